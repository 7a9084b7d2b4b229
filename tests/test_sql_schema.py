"""Schema text for prompts, read from a test-made database with awkward names and values."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from llamarch.errors import LlamarchError
from llamarch.sql import (
    Column,
    compact_schema,
    create_statements,
    ddl,
    describe,
    distinct_values,
    open_readonly,
    read_tables,
    sample_rows,
)

LONG = "a very long description " * 10


@pytest.fixture
def conn(tmp_path: Path):
    path = tmp_path / "shop.sqlite"
    w = sqlite3.connect(path)
    w.executescript('''
        CREATE TABLE Category (CategoryId INTEGER PRIMARY KEY, Name TEXT NOT NULL);
        CREATE TABLE "Order Items" (
            ItemId INTEGER PRIMARY KEY,
            CategoryId INTEGER NOT NULL REFERENCES Category(CategoryId),
            "Odd ""Name""" VARCHAR(20),
            Note TEXT,
            Price REAL,
            Owner INTEGER REFERENCES Category
        );
        CREATE TABLE Customer (CustomerId INTEGER PRIMARY KEY, Email TEXT, Country NVARCHAR(40),
                               Photo BLOB);
        CREATE VIEW Cheap AS SELECT * FROM "Order Items" WHERE Price < 5;
        CREATE INDEX items_by_category ON "Order Items"(CategoryId);
        INSERT INTO Category VALUES (1, 'Books'), (2, 'Music'), (3, 'Games');
    ''')
    w.executemany(
        'INSERT INTO "Order Items" VALUES (?, ?, ?, ?, ?, ?)',
        [
            (1, 1, "x", LONG, 4.5, 1),
            (2, 2, None, "line one\nline two", 12.0, None),
            (3, 2, "y", None, 3, 2),
            (4, 3, "x", "short", 7.25, 3),
        ],
    )
    w.executemany(
        "INSERT INTO Customer VALUES (?, ?, ?, ?)",
        [
            (1, "a@example.com", "Peru", b"\x00\xff"),
            (2, "b@example.com", "Peru", None),
            (3, "c@example.com", "Chile", None),
        ],
    )
    w.commit()
    w.close()
    c = open_readonly(path)
    yield c
    c.close()


def test_read_tables(conn) -> None:
    tables = read_tables(conn)
    assert [t.name for t in tables] == ["Category", "Order Items", "Customer"]
    items = tables[1]
    assert items.rows == 4
    assert [c.name for c in items.columns] == ["ItemId", "CategoryId", 'Odd "Name"', "Note", "Price", "Owner"]
    assert items.columns[0] == Column("ItemId", "INTEGER", True, False)
    assert items.columns[1] == Column("CategoryId", "INTEGER", False, True)
    assert items.foreign_keys == [("CategoryId", "Category", "CategoryId"), ("Owner", "Category", "CategoryId")]
    assert tables[0].foreign_keys == [] and tables[0].rows == 3


def test_compact_schema(conn) -> None:
    tables = read_tables(conn)
    text = compact_schema(tables)
    assert text.splitlines() == [
        "Category(CategoryId, Name)",
        '"Order Items"(ItemId, CategoryId, "Odd ""Name""", Note, Price, Owner)',
        "Customer(CustomerId, Email, Country, Photo)",
        'Joins: "Order Items".CategoryId = Category.CategoryId, "Order Items".Owner = Category.CategoryId',
    ]
    assert "Joins" not in compact_schema(tables, foreign_keys=False)
    assert "Cheap" not in text and "items_by_category" not in text


def test_create_statements(conn) -> None:
    text = create_statements(read_tables(conn))
    assert text.split("\n\n")[:2] == [
        "CREATE TABLE Category (\n  CategoryId INTEGER PRIMARY KEY,\n  Name TEXT\n);",
        'CREATE TABLE "Order Items" (\n'
        "  ItemId INTEGER PRIMARY KEY,\n"
        "  CategoryId INTEGER REFERENCES Category(CategoryId),\n"
        '  "Odd ""Name""" VARCHAR(20),\n'
        "  Note TEXT,\n"
        "  Price REAL,\n"
        "  Owner INTEGER REFERENCES Category(CategoryId)\n);",
    ]
    assert "Cheap" not in text and "INDEX" not in text
    assert len(text) < len(ddl(conn))


def test_create_statements_composite_key_and_untyped_columns(tmp_path: Path) -> None:
    path = tmp_path / "links.sqlite"
    w = sqlite3.connect(path)
    w.execute("CREATE TABLE Link (a, b INTEGER, note, PRIMARY KEY (a, b))")
    w.close()
    c = open_readonly(path)
    expected = "CREATE TABLE Link (\n  a,\n  b INTEGER,\n  note,\n  PRIMARY KEY (a, b)\n);"
    assert create_statements(read_tables(c)) == expected
    c.close()


def test_ddl_has_tables_and_views_but_no_indexes(conn) -> None:
    text = ddl(conn)
    parts = text.split("\n\n")
    assert len(parts) == 4
    assert parts[0].startswith("CREATE TABLE Category") and parts[3].startswith("CREATE VIEW Cheap")
    assert "CREATE INDEX" not in text


def test_sample_rows_cut_long_values(conn) -> None:
    items = read_tables(conn)[1]
    text = sample_rows(conn, items, n=3, max_chars=20)
    lines = text.splitlines()
    assert lines[0] == '"Order Items":'
    assert lines[1] == 'ItemId | CategoryId | Odd "Name" | Note | Price | Owner'
    assert len(lines) == 5
    assert lines[2] == "1 | 1 | x | " + LONG[:20] + "… | 4.5 | 1"
    assert lines[3] == "2 | 2 | NULL | line one line two | 12.0 | NULL"
    customer = read_tables(conn)[2]
    assert "<2 bytes>" in sample_rows(conn, customer, n=1)


def test_distinct_values(conn) -> None:
    tables = read_tables(conn)
    values = distinct_values(conn, tables)
    # Category is a small lookup table others reference; Country repeats; e-mails and the
    # long Note do not qualify; the VARCHAR column repeats ('x' twice).
    assert values == {
        "Category.Name": ["Books", "Games", "Music"],
        'Order Items.Odd "Name"': ["x", "y"],
        "Customer.Country": ["Chile", "Peru"],
    }
    everything = distinct_values(conn, tables, categorical_only=False)
    assert everything["Customer.Email"] == ["a@example.com", "b@example.com", "c@example.com"]
    assert "Order Items.Note" not in everything  # too long, and a value has a line break
    assert distinct_values(conn, tables, max_distinct=1) == {}


def test_describe_sections_and_determinism(conn) -> None:
    full = describe(conn, style="compact", sample_rows=2, distinct=True, notes="Prices are in euros.")
    assert full == describe(conn, style="compact", sample_rows=2, distinct=True, notes="Prices are in euros.")
    assert full.split("\n\n")[0] == compact_schema(read_tables(conn))
    assert "\n\nSample rows:\nCategory:\nCategoryId | Name\n1 | Books\n2 | Music\n\n" in full
    assert "\n\nValues of short text columns:\nCategory.Name: Books, Games, Music\n" in full
    assert full.endswith("\n\nNotes:\nPrices are in euros.")
    assert full.index("Sample rows:") < full.index("Values of short") < full.index("Notes:")


def test_describe_styles(conn) -> None:
    assert describe(conn) == compact_schema(read_tables(conn))
    assert describe(conn, style="ddl") == ddl(conn)
    assert describe(conn, style="create") == create_statements(read_tables(conn))
    assert describe(conn, style="none") == ""
    assert describe(conn, style="none", notes="n") == "Notes:\nn"
    with pytest.raises(LlamarchError, match="unknown schema style 'json'"):
        describe(conn, style="json")


def test_virtual_tables_without_their_shadow_tables(tmp_path: Path) -> None:
    from test_sql_guard import make_search_db

    conn = open_readonly(make_search_db(tmp_path / "search.sqlite"))
    names = [t.name for t in read_tables(conn)]
    assert names == ["note", "note_text", "place"]  # no note_text_data, place_node, ...; no spatial (no module)
    text = describe(conn, style="compact", sample_rows=2)
    assert "note_text(title, body)" in text and "note_text_" not in text and "place_" not in text
    assert "could not be read" not in text and "pears" in text
    assert "note_text_" not in ddl(conn) and "CREATE VIRTUAL TABLE note_text" in ddl(conn)
    assert "spatial" not in ddl(conn)  # its module is missing: the DDL does not offer what no query can read


def test_generated_columns_are_in_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "generated.sqlite"
    w = sqlite3.connect(path)
    w.executescript("""
        CREATE TABLE Line (LineId INTEGER PRIMARY KEY, Price REAL, Qty INTEGER,
                           Total REAL GENERATED ALWAYS AS (Price * Qty) VIRTUAL,
                           Code TEXT AS (upper(Name)) STORED, Name TEXT);
        INSERT INTO Line (LineId, Price, Qty, Name) VALUES (1, 2.5, 4, 'pen');
    """)
    w.commit()
    w.close()
    conn = open_readonly(path)
    (line,) = read_tables(conn)
    assert [c.name for c in line.columns] == ["LineId", "Price", "Qty", "Total", "Code", "Name"]
    assert compact_schema([line]).startswith("Line(LineId, Price, Qty, Total, Code, Name)")
