"""The read-only guard on real SQLite files: nothing it runs may change the database, or hang."""

from __future__ import annotations

import hashlib
import random
import sqlite3
import time
from pathlib import Path

import pytest

from llamarch.sql import DatabaseError, QueryFailed, open_readonly, run_query

SIDE_FILES = ("-journal", "-wal", "-shm")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_db(path: Path, journal_mode: str | None = None) -> Path:
    """artist (200 rows), album (1000), track (2000), genre (5): a 3-way cross join is 4e8 rows."""
    conn = sqlite3.connect(path)
    if journal_mode:
        conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.executescript("""
        CREATE TABLE genre (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE artist (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE album (id INTEGER PRIMARY KEY, title TEXT, artist_id INTEGER REFERENCES artist(id));
        CREATE TABLE track (id INTEGER PRIMARY KEY, name TEXT, album_id INTEGER REFERENCES album(id),
                            genre_id INTEGER REFERENCES genre(id), ms INTEGER);
        CREATE INDEX track_album ON track(album_id);
    """)
    conn.executemany("INSERT INTO genre VALUES (?, ?)", enumerate(["Rock", "Jazz", "Metal", "Pop", "Blues"], 1))
    conn.executemany("INSERT INTO artist VALUES (?, ?)", ((i, f"Artist {i}") for i in range(1, 201)))
    conn.executemany("INSERT INTO album VALUES (?, ?, ?)", ((i, f"Album {i}", i % 200 + 1) for i in range(1, 1001)))
    conn.executemany(
        "INSERT INTO track VALUES (?, ?, ?, ?, ?)",
        ((i, f"Track {i}", i % 1000 + 1, i % 5 + 1, 1000 * i) for i in range(1, 2001)),
    )
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "music.sqlite")


def no_side_files(path: Path) -> bool:
    return not any(Path(f"{path}{suffix}").exists() for suffix in SIDE_FILES)


def assert_usable(conn: sqlite3.Connection) -> None:
    result = run_query(conn, "SELECT count(*) FROM genre")
    assert result.rows == ((5,),) and not result.truncated
    assert not conn.in_transaction


REFUSED = [
    ("DROP TABLE track", "DROP TABLE"),
    ("DELETE FROM track", "DELETE"),
    ("UPDATE track SET name = 'x'", "UPDATE"),
    ("INSERT INTO genre VALUES (99, 'Polka')", "INSERT"),
    ("CREATE TABLE t (x)", "CREATE TABLE"),
    ("CREATE TEMP TABLE t (x)", "CREATE TEMP TABLE"),
    ("CREATE INDEX i ON track(name)", "CREATE INDEX"),
    ("ALTER TABLE track ADD COLUMN y", "ALTER TABLE"),
    ("PRAGMA writable_schema = 1", "PRAGMA writable_schema"),
    ("PRAGMA journal_mode=DELETE", "PRAGMA journal_mode"),
    ("PRAGMA user_version", "PRAGMA user_version"),
    ("SELECT load_extension('x')", "load_extension"),
    ("select LOAD_EXTENSION('x')", "load_extension"),
    ("BEGIN", "TRANSACTION"),
    ("SAVEPOINT s", "SAVEPOINT"),
    ("ANALYZE", "ANALYZE"),
    ("REINDEX track_album", "REINDEX"),
    ("VACUUM", "VACUUM"),
    ("WITH x AS (SELECT 1) DELETE FROM track", "DELETE"),
    ("SELECT * FROM pragma_table_info('track')", "PRAGMA"),
]


@pytest.mark.parametrize("sql,what", REFUSED)
def test_writes_and_settings_are_refused(db: Path, sql: str, what: str) -> None:
    before = sha256(db)
    conn = open_readonly(db)
    with pytest.raises(QueryFailed) as e:
        run_query(conn, sql)
    assert e.value.reason.startswith("not allowed: this connection is read-only")
    assert what in e.value.reason and "\n" not in e.value.reason
    assert_usable(conn)
    conn.close()
    assert sha256(db) == before and no_side_files(db)


@pytest.mark.parametrize("sql", ["ATTACH DATABASE '{other}' AS other", "VACUUM INTO '{other}'"])
def test_no_other_file_is_created(db: Path, tmp_path: Path, sql: str) -> None:
    other = tmp_path / "other.sqlite"
    before = sha256(db)
    conn = open_readonly(db)
    with pytest.raises(QueryFailed, match="read-only"):
        run_query(conn, sql.format(other=other))
    assert not other.exists()
    assert_usable(conn)
    conn.close()
    assert sha256(db) == before


@pytest.mark.parametrize(
    "sql",
    [
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c",
        "SELECT count(*) FROM artist, album, track",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c WHERE x < 0",
    ],
)
def test_runaway_queries_time_out(db: Path, sql: str) -> None:
    before = sha256(db)
    conn = open_readonly(db)
    start = time.perf_counter()
    with pytest.raises(QueryFailed) as e:
        run_query(conn, sql, time_budget_s=0.5)
    elapsed = time.perf_counter() - start
    assert e.value.reason == "took longer than 0.5 s"
    assert 0.4 < elapsed < 5
    assert_usable(conn)
    conn.close()
    assert sha256(db) == before and no_side_files(db)


def test_the_budget_covers_fetching(db: Path) -> None:
    """A query whose first row comes fast but whose later rows are slow still stops in time."""
    conn = open_readonly(db)
    sql = (
        "SELECT a.id FROM artist a, album b, track c "
        "WHERE c.id = 2000 AND b.id = 1000 OR a.id < 0"
    )  # one row early, then a long scan
    start = time.perf_counter()
    with pytest.raises(QueryFailed, match="took longer than 0.5 s"):
        run_query(conn, sql, time_budget_s=0.5, max_rows=1000)
    assert time.perf_counter() - start < 5
    assert_usable(conn)


def test_a_huge_result_is_truncated(db: Path) -> None:
    before = sha256(db)
    conn = open_readonly(db)
    result = run_query(conn, "SELECT * FROM artist, album, track", max_rows=500)
    assert result.truncated and len(result.rows) == 500
    assert result.columns == ("id", "name", "id", "title", "artist_id", "id", "name", "album_id", "genre_id", "ms")
    exact = run_query(conn, "SELECT id FROM genre", max_rows=5)
    assert not exact.truncated and len(exact.rows) == 5
    assert_usable(conn)
    conn.close()
    assert sha256(db) == before


@pytest.mark.parametrize(
    "sql,reason",
    [
        ("SELECT 1; SELECT 2", "more than one statement"),
        ("SELECT * FROM genre; DROP TABLE track", "more than one statement"),
        ("", "empty query"),
        ("   \n ", "empty query"),
        (";", "empty query"),
        ("-- just a comment", "empty query"),
        ("SELECT nope FROM genre", "no such column: nope"),
        ("SELECT * FROM nowhere", "no such table: nowhere"),
        ("SELEKT 1", "syntax error"),
        ("SELECT 1\x00", "null character"),
        ("SELECT '\ud800'", "surrogates"),
        ("SELECT zeroblob(1000000000)", "too big"),
    ],
)
def test_bad_sql_fails_cleanly(db: Path, sql: str, reason: str) -> None:
    before = sha256(db)
    conn = open_readonly(db)
    with pytest.raises(QueryFailed) as e:
        run_query(conn, sql)
    assert reason in e.value.reason and "\n" not in e.value.reason
    assert_usable(conn)
    conn.close()
    assert sha256(db) == before


def test_reads_work_and_text_is_decoded_leniently(db: Path) -> None:
    conn = open_readonly(db)
    result = run_query(conn, "SELECT name, CAST(x'ff' AS TEXT) FROM genre WHERE id = 1")
    assert result.rows == (("Rock", "\ufffd"),) and result.columns == ("name", "CAST(x'ff' AS TEXT)")
    assert result.seconds >= 0
    ok = run_query(
        conn, "SELECT g.name, count(*) FROM track t JOIN genre g ON g.id = t.genre_id GROUP BY g.name ORDER BY g.name;"
    )
    assert ok.rows == (("Blues", 400), ("Jazz", 400), ("Metal", 400), ("Pop", 400), ("Rock", 400))
    assert run_query(conn, "PRAGMA table_info(genre)").rows[1][1] == "name"
    assert run_query(conn, "SELECT count(*) FROM sqlite_master").rows[0][0] == 5


def test_queries_create_no_journal_files(db: Path) -> None:
    before = sha256(db)
    conn = open_readonly(db)
    for sql in ["SELECT * FROM track", "DELETE FROM track", "SELECT count(*) FROM track", "BEGIN"]:
        try:
            run_query(conn, sql)
        except QueryFailed:
            pass
        assert no_side_files(db)
    conn.close()
    assert sha256(db) == before and no_side_files(db)


def test_a_wal_database_is_read_without_a_trace(tmp_path: Path) -> None:
    db = make_db(tmp_path / "wal.sqlite", journal_mode="WAL")
    assert no_side_files(db)
    before = sha256(db)
    conn = open_readonly(db)
    assert run_query(conn, "SELECT count(*) FROM track").rows == ((2000,),)
    with pytest.raises(QueryFailed, match="read-only"):
        run_query(conn, "PRAGMA journal_mode = DELETE")
    with pytest.raises(QueryFailed, match="read-only"):
        run_query(conn, "DELETE FROM track")
    assert_usable(conn)
    conn.close()
    assert sha256(db) == before and no_side_files(db)


def test_a_wal_database_in_use_shows_committed_rows(tmp_path: Path) -> None:
    db = make_db(tmp_path / "wal.sqlite", journal_mode="WAL")
    writer = sqlite3.connect(db)
    writer.execute("INSERT INTO genre VALUES (6, 'Folk')")
    writer.commit()  # the row is in the -wal file, not yet in the database file
    conn = open_readonly(db)
    assert run_query(conn, "SELECT name FROM genre WHERE id = 6").rows == (("Folk",),)
    conn.close()
    writer.close()


def assert_one_line(e: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    for word in words:
        assert word in msg, msg


def test_open_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.sqlite"
    with pytest.raises(DatabaseError) as e:
        open_readonly(path)
    assert_one_line(e, path, "not found")
    assert not path.exists()


def test_open_directory(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError) as e:
        open_readonly(tmp_path)
    assert_one_line(e, tmp_path, "directory")


@pytest.mark.parametrize("content", [b"hello, this is not a database\n" * 100, random.Random(7).randbytes(8192)])
def test_open_a_file_that_is_not_a_database(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "data.sqlite"
    path.write_bytes(content)
    with pytest.raises(DatabaseError) as e:
        open_readonly(path)
    assert_one_line(e, path, "not an SQLite database", "encrypted")
    assert path.read_bytes() == content and no_side_files(path)


def test_open_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()
    with pytest.raises(DatabaseError) as e:
        open_readonly(path)
    assert_one_line(e, path, "empty")


def test_open_a_locked_database(db: Path) -> None:
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("INSERT INTO genre VALUES (6, 'Folk')")
    start = time.perf_counter()
    with pytest.raises(DatabaseError) as e:
        open_readonly(db)
    assert time.perf_counter() - start < 5
    assert_one_line(e, db, "locked")
    writer.execute("ROLLBACK")
    writer.close()
    conn = open_readonly(db)
    assert_usable(conn)


def test_a_path_with_odd_characters(tmp_path: Path) -> None:
    folder = tmp_path / "my data #1 ?x=%20"
    folder.mkdir()
    db = make_db(folder / "it's here.sqlite")
    conn = open_readonly(db)
    assert_usable(conn)
    conn.close()
    assert no_side_files(db)


# --- virtual tables: FTS5 and R*Tree, built into SQLite, and one whose module is missing ----------


def make_search_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, title TEXT)")
    conn.execute("CREATE VIRTUAL TABLE note_text USING fts5(title, body)")
    conn.execute("CREATE VIRTUAL TABLE place USING rtree(id, min_x, max_x, min_y, max_y)")
    for i in range(30):
        conn.execute("INSERT INTO note VALUES (?, ?)", (i, f"note {i}"))
        conn.execute("INSERT INTO note_text VALUES (?, ?)", (f"note {i}", "apples" if i % 3 else "pears"))
        conn.execute("INSERT INTO place VALUES (?, ?, ?, ?, ?)", (i, i, i + 1, 0, 1))
    conn.commit()
    conn.execute("PRAGMA writable_schema = ON")  # a table of a module this SQLite lacks (an extension's)
    missing = "CREATE VIRTUAL TABLE spatial USING geo_x(a)"
    conn.execute("INSERT INTO sqlite_master VALUES ('table', 'spatial', 'spatial', 0, ?)", (missing,))
    conn.commit()
    conn.close()
    return path


def test_virtual_tables_are_read_but_not_written(tmp_path: Path) -> None:
    db = make_search_db(tmp_path / "search.sqlite")
    before = sha256(db)
    conn = open_readonly(db)
    assert run_query(conn, "SELECT count(*) FROM note_text WHERE note_text MATCH 'pears'").rows == ((10,),)
    assert run_query(conn, "SELECT count(*) FROM place WHERE min_x >= 10 AND max_x <= 20").rows == ((10,),)
    for sql in ("INSERT INTO note_text VALUES ('a', 'b')", "DELETE FROM place", "DROP TABLE note_text"):
        with pytest.raises(QueryFailed, match="read-only"):
            run_query(conn, sql)
    with pytest.raises(QueryFailed):
        run_query(conn, "SELECT * FROM spatial")  # its module is missing: a failed check, not a crash
    assert run_query(conn, "SELECT count(*) FROM note").rows == ((30,),)
    conn.close()
    assert sha256(db) == before and no_side_files(db)
