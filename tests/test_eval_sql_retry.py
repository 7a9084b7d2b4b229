"""`eval sql --retry`: a prediction that fails to run gets `llamarch sql`'s retry, and what the
retry ran is scored. Real SQLite; the model is a scripted stand-in (the retry policy is
`Asker.ask`'s, tested in test_sql_retry.py; here: the harness around it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from llamarch.backends import Chunk, Stats
from llamarch.evals.checkers import SQLChecker
from llamarch.evals.sql import SQLSettings, evaluate
from llamarch.sql.questions import Question
from llamarch.store import Store

QUESTIONS = [
    Question("How many artists are there?", "SELECT count(*) FROM Artist", "q:1"),
    Question(
        "Each track with its album's title?", "SELECT T.Name, A.Title FROM Track T JOIN Album A USING (AlbumId)", "q:2"
    ),
    Question("Remove every artist.", "SELECT count(*) FROM Artist", "q:3"),
]
FIRST = {  # the model's first reply to each question
    "How many artists are there?": "```sql\nSELECT count(*) FROM Artist\n```",
    "Each track with its album's title?": "```sql\nSELECT Name, Title FROM Track\n```",  # no column Title
    "Remove every artist.": "```sql\nDELETE FROM Artist\n```",  # refused: not retried
}
RETRY = "```sql\nSELECT Track.Name, Album.Title FROM Track JOIN Album ON Album.AlbumId = Track.AlbumId\n```"


class Scripted:
    """First replies from FIRST through stream_batch; each retry request answered with RETRY."""

    def __init__(self) -> None:
        self.retries: list[str] = []  # the repair requests it was sent

    def stream_batch(self, prompts, parallel=None, **options):
        for i, messages in enumerate(prompts):
            question = messages[-1]["content"].split("Question: ")[-1]
            yield i, Chunk(FIRST[question], stats=Stats(10, 5, 1.0, 1.0, 0.1, 0.2, "stop"))

    def stream(self, messages, options):
        self.retries.append(messages[-1]["content"])
        yield Chunk(RETRY, stats=Stats(10, 7, 1.0, 1.0, 0.1, 0.2, "stop"))


@pytest.fixture()
def checker(tmp_path: Path):
    path = tmp_path / "music.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE Artist (ArtistId INTEGER PRIMARY KEY, Name TEXT);
            CREATE TABLE Album (AlbumId INTEGER PRIMARY KEY, Title TEXT, ArtistId INTEGER REFERENCES Artist);
            CREATE TABLE Track (TrackId INTEGER PRIMARY KEY, Name TEXT, AlbumId INTEGER REFERENCES Album);
            INSERT INTO Artist VALUES (1, 'AC/DC'), (2, 'Accept');
            INSERT INTO Album VALUES (1, 'Let There Be Rock', 1), (2, 'Balls to the Wall', 2);
            INSERT INTO Track VALUES (1, 'Go Down', 1), (2, 'Balls to the Wall', 2);
        """)
    conn.close()
    c = SQLChecker(path)
    yield c
    c.close()


def run(checker: SQLChecker, store: Store, model: Scripted, retry: bool) -> dict:
    settings = SQLSettings(retry=retry)
    return evaluate(model, checker, QUESTIONS, settings, store=store, model_key=["scripted"])


def test_a_query_that_fails_is_retried_and_the_retry_is_scored(tmp_path, checker):
    with Store(tmp_path / "store.db") as store:
        plain = run(checker, store, Scripted(), retry=False)
        model = Scripted()
        got = run(checker, store, model, retry=True)
    assert plain["summary"]["matched"] == 1 and plain["summary"]["did_not_execute"] == 2
    assert len(model.retries) == 1  # the write is refused, not retried; the query that ran is left alone
    assert "no such column: Title" in model.retries[0] and "Album" in model.retries[0]  # SQLite's error + hint
    counted, fixed, refused = got["results"]
    assert "retry" not in counted and counted["matched"]
    assert fixed["matched"] and fixed["executed"] and fixed["prediction"].startswith("SELECT Track.Name")
    assert fixed["retry"] == {
        "attempts": 2,
        "ran": True,
        "matched": True,
        "first": {"prediction": "SELECT Name, Title FROM Track", "reason": "no such column: Title"},
    }
    assert not refused["matched"] and refused["retry"]["attempts"] == 1
    s = got["summary"]
    assert (s["matched"], s["did_not_execute"], s["retried"], s["ran_after_retry"]) == (2, 1, 1, 1)
    assert s["retry_completion_tokens"] == 7


def test_a_rerun_takes_the_retries_from_the_store(tmp_path, checker):
    with Store(tmp_path / "store.db") as store:
        first = run(checker, store, Scripted(), retry=True)
        model = Scripted()
        again = run(checker, store, model, retry=True)
    assert model.retries == [] and again["results"] == first["results"]
