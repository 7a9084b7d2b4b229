"""Queries built from a database (`distill --from-queries`), on real SQLite databases the tests make."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest

from llamarch.sql import open_readonly, read_tables, result_signature, run_query
from llamarch.sql.prompt import COUNTS_NOT_LISTS, LISTS_NOT_COUNTS, parse_question, question_messages, question_mismatch
from llamarch.sql.sampled_queries import MAX_RESULT_ROWS, SampledQuery, _tie_at_limit, sample_queries


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.sqlite"
    w = sqlite3.connect(path)
    w.executescript("""
        CREATE TABLE Region (RegionId INTEGER PRIMARY KEY, Name TEXT NOT NULL);
        CREATE TABLE Customer (CustomerId INTEGER PRIMARY KEY, Name TEXT, City TEXT,
                               RegionId INTEGER REFERENCES Region(RegionId));
        CREATE TABLE "Order" (OrderId INTEGER PRIMARY KEY, CustomerId INTEGER REFERENCES Customer(CustomerId),
                              OrderDate DATETIME, Total NUMERIC(10,2), Note TEXT);
    """)
    w.executemany("INSERT INTO Region VALUES (?, ?)", [(1, "North"), (2, "South"), (3, "West")])
    cities = ["Oslo", "Lima", "Pune", "Kyiv", "Oslo", "Lima"]
    w.executemany(
        "INSERT INTO Customer VALUES (?, ?, ?, ?)",
        [(i, f"Customer {i}", cities[i % 6], 1 + i % 3) for i in range(1, 25)],
    )
    w.executemany(
        'INSERT INTO "Order" VALUES (?, ?, ?, ?, ?)',
        [
            (i, 1 + i % 24, f"20{20 + i % 5}-0{1 + i % 9}-1{i % 10} 00:00:00", round(3.5 * i % 97, 2), None)
            for i in range(1, 200)
        ],
    )
    w.commit()
    w.close()
    return path


def test_built_queries_run_return_few_rows_and_are_distinct(shop: Path) -> None:
    before = hashlib.sha256(shop.read_bytes()).hexdigest()
    conn = open_readonly(shop)
    queries = sample_queries(conn, read_tables(conn), 40, seed=0)
    assert len(queries) == 40
    signatures = set()
    for q in queries:
        result = run_query(conn, q.sql, max_rows=MAX_RESULT_ROWS + 1)  # through the read-only guard
        assert 1 <= len(result.rows) <= MAX_RESULT_ROWS, q.sql
        signatures.add(result_signature(result))
    assert len(signatures) == 40  # no two queries give the same result
    kinds = {q.kind for q in queries}
    assert {"join", "lookup"} <= kinds and len(kinds) >= 5, kinds
    assert any(q.sql.count(" JOIN ") == 2 for q in queries)  # three tables along the foreign keys
    assert any('"Order"' in q.sql for q in queries)  # a keyword as a table name is quoted
    for q in queries:  # a look-up never answers with the very value it looks for
        shown = re.match(r"SELECT (\S+) FROM .* WHERE (\S+) = ", q.sql)
        assert not shown or shown.group(1) != shown.group(2), q.sql
    conn.close()
    assert hashlib.sha256(shop.read_bytes()).hexdigest() == before


def test_built_queries_are_reproducible_and_skip_excluded_results(shop: Path) -> None:
    conn = open_readonly(shop)
    tables = read_tables(conn)
    first = sample_queries(conn, tables, 15, seed=3)
    assert [q.sql for q in sample_queries(conn, tables, 15, seed=3)] == [q.sql for q in first]
    assert [q.sql for q in sample_queries(conn, tables, 15, seed=4)] != [q.sql for q in first]
    held = {result_signature(run_query(conn, q.sql)) for q in first[:5]}
    again = sample_queries(conn, tables, 15, seed=3, exclude=held)
    assert not {result_signature(run_query(conn, q.sql)) for q in again} & held
    conn.close()


def test_a_tie_at_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ties.sqlite"
    w = sqlite3.connect(path)
    w.execute("CREATE TABLE Item (ItemId INTEGER PRIMARY KEY, Colour TEXT)")
    w.executemany("INSERT INTO Item (Colour) VALUES (?)", [(c,) for c in "red red blue blue green".split()])
    w.commit()
    w.close()
    conn = open_readonly(path)
    base = "SELECT Item.Colour, count(*) FROM Item GROUP BY Item.Colour ORDER BY count(*) DESC"
    assert _tie_at_limit(conn, SampledQuery(base, "group", 1))  # red and blue both have 2
    assert not _tie_at_limit(conn, SampledQuery(base, "group", 2))  # then green has 1
    assert SampledQuery(base, "group", 2).sql == base + " LIMIT 2"
    conn.close()


def test_numbers_that_are_points_in_time_are_not_summed(tmp_path: Path) -> None:
    path = tmp_path / "orders.sqlite"
    w = sqlite3.connect(path)
    w.execute("CREATE TABLE Shop (ShopId INTEGER PRIMARY KEY, Name TEXT)")
    w.execute(
        "CREATE TABLE Orders (OrderId INTEGER PRIMARY KEY, ShopId INTEGER REFERENCES Shop, Item TEXT,"
        " Amount REAL, placed_unix INTEGER, UpdatedAt INTEGER)"
    )
    w.executemany("INSERT INTO Shop (Name) VALUES (?)", [("North",), ("South",), ("East",)])
    w.executemany(
        "INSERT INTO Orders (ShopId, Item, Amount, placed_unix, UpdatedAt) VALUES (?, ?, ?, ?, ?)",
        [(i % 3 + 1, f"item {i % 7}", 2.5 * i, 1_700_000_000 + 3600 * i, 1_700_100_000 + i) for i in range(40)],
    )
    w.commit()
    w.close()
    conn = open_readonly(path)
    sqls = [q.sql for q in sample_queries(conn, read_tables(conn), 80, seed=0)]
    measured = [s for s in sqls if re.search(r"\b(sum|avg)\(", s)]
    assert any("Amount" in s for s in measured)  # a real quantity is summed and averaged
    assert not [s for s in measured if re.search(r"(sum|avg|max|min)\(Orders\.(placed_unix|UpdatedAt)\)", s)]
    conn.close()


def test_a_database_with_no_rows_gives_no_queries(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (a INTEGER, b TEXT)").connection.close()
    conn = open_readonly(path)
    assert sample_queries(conn, read_tables(conn), 5) == []
    conn.close()


def test_the_question_of_a_query() -> None:
    messages = question_messages("SELECT count(*) FROM t", "t(a, b)")
    assert messages[1]["content"].startswith("Database:\nt(a, b)\n\n")  # the schema first: a shared prefix
    assert "SELECT count(*) FROM t" in messages[1]["content"]
    assert parse_question('Question: "How many tracks are in the Jazz genre?"\nmore') == (
        "How many tracks are in the Jazz genre?"
    )
    assert parse_question("**Question:** Which artist recorded Stormbringer?") == "Which artist recorded Stormbringer?"
    for bad in ("SELECT name FROM artist", "Hi", "", "```sql\nSELECT 1\n```"):
        assert parse_question(bad) is None, bad


def test_a_count_asked_of_a_list_or_a_list_asked_of_a_count_is_caught() -> None:
    having = "SELECT Genre.Name FROM Genre JOIN Track ON Track.GenreId = Genre.GenreId GROUP BY Genre.GenreId"
    having += " HAVING count(*) > 74"
    assert question_mismatch("How many genres have more than 74 tracks?", having) == LISTS_NOT_COUNTS
    assert question_mismatch("Which genres have more than 74 tracks?", having) is None
    none = "SELECT count(*) FROM Artist WHERE Artist.ArtistId NOT IN (SELECT Album.ArtistId FROM Album)"
    assert question_mismatch("Which artists have no albums?", none) == COUNTS_NOT_LISTS
    assert question_mismatch("What is the number of artists without an album?", none) is None
    per_group = "SELECT Employee.LastName, count(*) FROM Customer JOIN Employee ON 1 GROUP BY Employee.LastName"
    assert question_mismatch("How many customers does each employee support?", per_group) is None
    assert question_mismatch("How many items were sold?", "SELECT sum(Quantity) FROM Line") is None


def test_a_look_up_in_a_two_column_table_answers_with_the_other_column(tmp_path: Path) -> None:
    path = tmp_path / "genres.sqlite"
    w = sqlite3.connect(path)
    w.execute("CREATE TABLE Genre (GenreId INTEGER PRIMARY KEY, Name TEXT)")
    w.executemany("INSERT INTO Genre (Name) VALUES (?)", [(f"Genre {i}",) for i in range(30)])
    w.commit()
    w.close()
    conn = open_readonly(path)
    lookups = [q.sql for q in sample_queries(conn, read_tables(conn), 20, seed=0) if q.kind == "lookup"]
    assert len(lookups) >= 3
    assert all(q.startswith("SELECT Genre.GenreId FROM Genre WHERE Genre.Name = ") for q in lookups), lookups
    conn.close()


def test_long_join_paths_and_self_joins_are_built_and_find_rows(tmp_path: Path) -> None:
    """Joins of up to five tables along the foreign keys, through a table of keys only, and a
    self-join on a foreign key into its own table (who reports to whom)."""
    path = tmp_path / "staff.sqlite"
    w = sqlite3.connect(path)
    w.executescript("""
        CREATE TABLE Staff (StaffId INTEGER PRIMARY KEY, Name TEXT, Role TEXT,
                            BossId INTEGER REFERENCES Staff(StaffId));
        CREATE TABLE Team (TeamId INTEGER PRIMARY KEY, Title TEXT, LeadId INTEGER REFERENCES Staff(StaffId));
        CREATE TABLE Project (ProjectId INTEGER PRIMARY KEY, Label TEXT, TeamId INTEGER REFERENCES Team(TeamId));
        CREATE TABLE ProjectTag (ProjectId INTEGER REFERENCES Project(ProjectId), TagId INTEGER REFERENCES Tag(TagId));
        CREATE TABLE Tag (TagId INTEGER PRIMARY KEY, Word TEXT);
    """)
    w.executemany(
        "INSERT INTO Staff VALUES (?, ?, ?, ?)",
        [(i, f"Person {i}", ["Lead", "Dev", "Ops"][i % 3], None if i == 1 else 1 + i // 4) for i in range(1, 16)],
    )
    w.executemany("INSERT INTO Team VALUES (?, ?, ?)", [(i, f"Team {i}", i * 2) for i in range(1, 6)])
    w.executemany("INSERT INTO Project VALUES (?, ?, ?)", [(i, f"Project {i}", 1 + i % 5) for i in range(1, 21)])
    w.executemany("INSERT INTO Tag VALUES (?, ?)", [(i, w_) for i, w_ in enumerate(["red", "blue", "green"], 1)])
    w.executemany("INSERT INTO ProjectTag VALUES (?, ?)", [(p, 1 + p % 3) for p in range(1, 21)])
    w.commit()
    w.close()
    conn = open_readonly(path)
    queries = sample_queries(conn, read_tables(conn), 120, seed=0)
    tables = [q.sql.count(" JOIN ") + 1 for q in queries if q.kind == "path"]
    assert tables and min(tables) >= 3 and max(tables) >= 4, tables
    self_joins = [q for q in queries if q.kind == "self-join"]  # the pointed-to row is named after the key
    assert self_joins and all(
        "FROM Staff JOIN Staff AS Boss ON Staff.BossId = Boss.StaffId" in q.sql for q in self_joins
    )
    assert {q.sql.split()[1].split(".")[0] for q in self_joins} == {"Staff", "Boss"}  # both directions
    assert all(re.search(r"WHERE (Staff|Boss)\.Name = ", q.sql) for q in self_joins)  # given by name
    groups = [q for q in queries if q.kind == "join-group" and "count(*)" in q.base]
    assert groups and not [q for q in groups if " FROM ProjectTag " in q.base]  # a count of keys is not a count of tags
    for q in groups:  # along foreign keys followed forward: a count counts rows of the first table, no fan-out
        first = q.base.split(" FROM ")[1].split()[0]
        counted = sum(r[1] for r in run_query(conn, q.base).rows)
        assert counted <= run_query(conn, f"SELECT count(*) FROM {first}").rows[0][0], q.sql
    for q in queries:
        assert 1 <= len(run_query(conn, q.sql, max_rows=MAX_RESULT_ROWS + 1).rows) <= MAX_RESULT_ROWS, q.sql


def test_rows_chosen_by_their_related_rows_answer_what_they_say(tmp_path: Path) -> None:
    """Authors with more than N books (HAVING), with no book (NOT IN), with a book that passes a
    filter (IN): each built query's rows are checked against the data counted here in Python."""
    path = tmp_path / "books.sqlite"
    w = sqlite3.connect(path)
    w.executescript("""
        CREATE TABLE Author (AuthorId INTEGER PRIMARY KEY, Name TEXT NOT NULL);
        CREATE TABLE Book (BookId INTEGER PRIMARY KEY, Title TEXT, Pages INTEGER,
                           AuthorId INTEGER REFERENCES Author(AuthorId));
    """)
    w.executemany("INSERT INTO Author VALUES (?, ?)", [(i, f"Author {i}") for i in range(1, 31)])
    books = [(b, f"Book {b}", 100 + 37 * b % 400, 1 + (b * b) % 23) for b in range(1, 120)]  # 12 authors have books
    w.executemany("INSERT INTO Book VALUES (?, ?, ?, ?)", books)
    w.commit()
    w.close()
    names = {i: f"Author {i}" for i in range(1, 31)}
    count = {i: sum(1 for b in books if b[3] == i) for i in names}
    childless = {names[i] for i in names if not count[i]}
    conn = open_readonly(path)
    queries = sample_queries(conn, read_tables(conn), 80, seed=0)
    kinds = {q.kind for q in queries}
    assert {"having", "none", "some"} <= kinds, kinds
    for q in queries:
        rows = {r[0] for r in run_query(conn, q.sql).rows}
        if q.kind == "having" and (n := re.search(r"HAVING count\(\*\) > (\d+)$", q.sql)):
            assert rows == {names[i] for i in names if count[i] > int(n.group(1))}, q.sql
        elif q.kind == "having":
            assert "HAVING avg(Book.Pages) > " in q.sql, q.sql
        elif q.kind == "none":
            assert rows in (childless, {len(childless)}), q.sql  # their names, or how many they are
        elif q.kind == "some":
            assert rows and rows <= {names[i] for i in names if count[i]}, q.sql
    conn.close()


def test_a_resumed_run_reuses_its_built_queries_until_the_database_or_the_builder_changes(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from llamarch.patterns.student_teacher import verified
    from llamarch.sql import sampled_queries
    from llamarch.store import Store

    calls: list[int] = []
    real = sampled_queries.sample_queries

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sampled_queries, "sample_queries", counted)
    distiller = verified.VerifiedDistiller(verified.VerifiedConfig(out=tmp_path / "run", db=shop, from_queries=6))
    with Store(tmp_path / "run" / "store.db") as distiller.store:
        first = distiller.built_queries([])
        assert len(first) == 6 and "building queries from the data" in distiller.timings
        assert distiller.built_queries([]) == first and len(calls) == 1  # stored: not built again
        os.utime(shop, ns=(1, 1))  # the file changed: built again, from the same seed
        assert distiller.built_queries([]) == first and len(calls) == 2
        monkeypatch.setattr(sampled_queries, "BUILDER_VERSION", sampled_queries.BUILDER_VERSION + 1)
        assert distiller.built_queries([]) == first and len(calls) == 3  # another builder: built again
