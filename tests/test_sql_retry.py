"""`llamarch sql`'s retry without a model: the schema hint the repair prompt carries, the
same-query detection, and the resampling when the retry repeats the failed query (a scripted
stand-in for the model)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from llamarch.backends import Chunk, Stats
from llamarch.sql.ask import RESAMPLE_TEMPERATURE, SAME_QUERY, Asker, query_key, same_query
from llamarch.sql.guard import QueryFailed, open_readonly, run_query
from llamarch.sql.prompt import REPAIR, repair_messages, sql_messages
from llamarch.sql.schema import error_hint, query_aliases, read_tables

ALIASED = "SELECT T1.Title, T2.Name FROM Album AS T1 JOIN Track AS T2 ON T1.AlbumId = T2.AlbumId"
WRONG = "SELECT T1.Name, T2.Name FROM Artist AS T1 JOIN Album AS T2 ON T1.ArtistId = T2.ArtistId"


@pytest.fixture()
def music(tmp_path: Path) -> Path:
    path = tmp_path / "music.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE Artist (ArtistId INTEGER PRIMARY KEY, Name TEXT);
            CREATE TABLE Album (AlbumId INTEGER PRIMARY KEY, Title TEXT, ArtistId INTEGER REFERENCES Artist);
            CREATE TABLE Track (TrackId INTEGER PRIMARY KEY, Name TEXT, AlbumId INTEGER REFERENCES Album,
                                Composer TEXT);
            INSERT INTO Artist VALUES (1, 'AC/DC'), (2, 'Accept');
            INSERT INTO Album VALUES (1, 'Let There Be Rock', 1), (2, 'Balls to the Wall', 2);
            INSERT INTO Track VALUES (1, 'Go Down', 1, 'Young'), (2, 'Balls to the Wall', 2, NULL);
        """)
    conn.close()
    return path


@pytest.fixture()
def conn(music: Path):
    c = open_readonly(music)
    yield c
    c.close()


def sqlite_error(conn: sqlite3.Connection, sql: str) -> str:
    with pytest.raises(QueryFailed) as e:
        run_query(conn, sql)
    return e.value.reason


# --- the hint ---------------------------------------------------------------------------------


def test_no_such_column_names_the_alias_table_and_the_tables_that_have_the_column(conn):
    reason = sqlite_error(conn, WRONG)
    assert reason == "no such column: T2.Name"
    hint = error_hint(read_tables(conn), reason, WRONG)
    assert hint == "T2 is Album, which has no column Name. The tables with a column Name: Artist, Track."


def test_other_missing_names(conn):
    tables = read_tables(conn)

    def hint(sql: str) -> str | None:
        return error_hint(tables, sqlite_error(conn, sql), sql)

    assert (
        hint("SELECT Album.Name FROM Album")
        == "Album has no column Name. The tables with a column Name: Artist, Track."
    )
    assert hint("SELECT T3.Title FROM Album T1") == (
        "T3 is neither a table nor an alias the query defines. The tables with a column Title: Album."
    )
    assert hint("SELECT Composr FROM Track") == "No table has a column Composr; similar columns: Track.Composer."
    assert hint("SELECT Year FROM Album") == "No table has a column Year."
    assert hint("SELECT * FROM Artists") == "There is no table Artists; similar tables: Artist."
    assert hint("SELECT * FROM Genre") == "There is no table Genre; the tables are: Artist, Album, Track."
    assert hint("SELECT Name FROM Artist JOIN Track") == (
        "Name is a column of Artist, Track: write it with its table or alias (e.g. Artist.Name)."
    )
    assert hint("SELEC Name FROM Artist") is None  # a syntax error: nothing the schema can add
    assert run_query(conn, ALIASED).rows  # the query the hint leads to runs


def test_aliases_of_a_query():
    assert query_aliases(WRONG) == {"t1": "Artist", "t2": "Album"}
    assert query_aliases('SELECT * FROM "Album" a, Track t WHERE a.AlbumId = t.AlbumId') == {"a": "Album", "t": "Track"}
    assert query_aliases("SELECT Name FROM Artist WHERE ArtistId = 1") == {}


def test_the_repair_prompt_carries_the_hint_and_is_unchanged_without_one():
    messages = sql_messages("Names?", "Artist(ArtistId, Name)")
    plain = repair_messages(messages, "```sql\nSELECT x\n```", "no such column: x")
    assert plain[-1]["content"] == REPAIR.format(reason="no such column: x")  # what the distill teacher sends
    hinted = repair_messages(messages, "```sql\nSELECT x\n```", "no such column: x", hint="No table has a column x.")
    assert hinted[-1]["content"].startswith("That query failed: no such column: x\nNo table has a column x.\nWrite")
    assert hinted[:-1] == plain[:-1]


# --- the same query ---------------------------------------------------------------------------


def test_same_query_ignores_case_spacing_semicolons_and_comments_but_not_literals():
    assert same_query("SELECT T2.Name FROM Album AS T2;", "select  t2.name\nfrom album as T2")
    assert same_query("SELECT count( * ) FROM Track -- all\n", "SELECT count(*) FROM Track")
    assert same_query("SELECT Name FROM Artist WHERE ArtistId=1", "SELECT Name FROM Artist WHERE ArtistId = 1 ;")
    assert not same_query(
        "SELECT Name FROM Artist WHERE Name = 'AC/DC'", "SELECT Name FROM Artist WHERE Name = 'ac/dc'"
    )
    assert not same_query("SELECT T1.Name FROM Artist AS T1", "SELECT T2.Name FROM Track AS T2")
    assert not same_query(None, "SELECT 1")
    assert query_key("SELECT 'a  b' FROM x") == "select 'a  b' from x"


# --- the retry, with a scripted model ---------------------------------------------------------


class Scripted:
    """Replies in turn; records the options and the last message of each call."""

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.calls: list[tuple[float, int | None, str]] = []

    def stream(self, messages, options):
        self.calls.append((options.temperature, options.seed, messages[-1]["content"]))
        yield Chunk(self.replies.pop(0), stats=Stats(10, 5, 1.0, 1.0, 0.1, 0.2, "stop"))


def test_a_retry_that_repeats_the_failed_query_is_sampled_again_and_not_run(conn):
    model = Scripted(f"```sql\n{WRONG.lower()};\n```", f"```sql\n{ALIASED}\n```")
    answer = Asker(model, conn).ask("Each album's tracks?", first_reply=f"```sql\n{WRONG}\n```")
    assert answer.ok and answer.sql == ALIASED and len(answer.result.rows) == 2
    assert [a.error for a in answer.attempts] == ["no such column: T2.Name", SAME_QUERY, None]
    (t1, seed1, repair), (t2, seed2, _) = model.calls
    assert (t1, seed1) == (0.0, None)  # the retry itself: greedy, as asked
    assert t2 == RESAMPLE_TEMPERATURE and seed2 is not None  # then sampled, seeded
    assert "T2 is Album, which has no column Name. The tables with a column Name: Artist, Track." in repair


def test_a_query_repeated_every_time_is_one_line_and_runs_once(conn):
    model = Scripted(*[f"```sql\n{WRONG}\n```"] * 3)
    answer = Asker(model, conn, seed=7).ask("Each album's tracks?", first_reply=f"```sql\n{WRONG}\n```")
    assert not answer.ok and len(model.calls) == 3 and model.replies == []
    assert [a.error for a in answer.attempts] == ["no such column: T2.Name"] + [SAME_QUERY] * 3
    assert [seed for _, seed, _ in model.calls] == [7, 8, 9]  # --seed, then one per sample
    assert answer.error.startswith(
        "the query failed twice (the model wrote the same query again, 3 times); SQLite said: no such column: T2.Name"
    )
    assert "\n" not in answer.error


def test_a_different_failing_retry_is_not_resampled(conn):
    model = Scripted("```sql\nSELECT Year FROM Album\n```")
    answer = Asker(model, conn).ask("Years?", first_reply="```sql\nSELECT Yr FROM Album\n```")
    assert len(model.calls) == 1 and len(answer.attempts) == 2
    assert answer.error.startswith("the query failed twice; SQLite said: no such column: Year")
