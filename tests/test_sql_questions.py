"""Question files: good lines load, bad lines are reported by file and line number."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from llamarch.errors import LlamarchError
from llamarch.sql import Question, load_questions, open_readonly


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.sqlite"
    w = sqlite3.connect(path)
    w.executescript(
        "CREATE TABLE Genre (GenreId INTEGER PRIMARY KEY, Name TEXT);INSERT INTO Genre VALUES (1, 'Rock'), (2, 'Jazz');"
    )
    w.commit()
    w.close()
    return path


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def line(question, sql=None, **extra) -> str:
    obj = {"question": question, **({"sql": sql} if sql is not None else {}), **extra}
    return json.dumps(obj)


def test_a_good_file(tmp_path: Path, db: Path) -> None:
    path = write(
        tmp_path,
        line("How many genres are there?", "SELECT count(*) FROM Genre;"),
        "",
        line("  Which genres are there?  ", "SELECT Name FROM Genre", difficulty="easy"),
        line("What is the most popular genre?"),
    )
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    conn = open_readonly(db)
    questions = load_questions(path, conn)
    assert questions == [
        Question("How many genres are there?", "SELECT count(*) FROM Genre;", f"{path}:1"),
        Question("Which genres are there?", "SELECT Name FROM Genre", f"{path}:3"),
        Question("What is the most popular genre?", None, f"{path}:4"),
    ]
    assert load_questions(path) == questions
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def assert_error(excinfo: pytest.ExceptionInfo, *parts: str) -> None:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for part in parts:
        assert part in msg, msg


def test_a_malformed_json_line(tmp_path: Path) -> None:
    path = write(tmp_path, line("Fine?", "SELECT 1"), '{"question": "broken", "sql": ')
    with pytest.raises(LlamarchError) as e:
        load_questions(path)
    assert_error(e, f"{path}:2", "not valid JSON")


@pytest.mark.parametrize(
    "bad,expected",
    [
        ('{"sql": "SELECT 1"}', '"question"'),
        ('{"question": "   ", "sql": "SELECT 1"}', '"question"'),
        ('{"question": 3}', '"question"'),
        ('["question", "sql"]', "JSON object"),
        ('"just a string"', "JSON object"),
        ('{"question": "Q?", "sql": 42}', '"sql"'),
        ('{"question": "Q?", "sql": ""}', '"sql"'),
    ],
)
def test_a_malformed_question(tmp_path: Path, bad: str, expected: str) -> None:
    path = write(tmp_path, line("Fine?"), "", bad)
    with pytest.raises(LlamarchError) as e:
        load_questions(path)
    assert_error(e, f"{path}:3", expected, "expected")


def test_require_sql(tmp_path: Path) -> None:
    path = write(tmp_path, line("Fine?", "SELECT 1"), line("No reference?"))
    assert len(load_questions(path)) == 2
    with pytest.raises(LlamarchError) as e:
        load_questions(path, require_sql=True)
    assert_error(e, f"{path}:2", '"sql"')


def test_a_reference_that_fails(tmp_path: Path, db: Path) -> None:
    path = write(tmp_path, line("Fine?", "SELECT 1"), line("Broken?", "SELECT Nme FROM Genre"))
    with pytest.raises(LlamarchError) as e:
        load_questions(path, open_readonly(db))
    assert_error(e, f"{path}:2", "no such column: Nme", "fix or remove that line")


def test_a_reference_that_writes(tmp_path: Path, db: Path) -> None:
    path = write(tmp_path, line("Delete?", "DELETE FROM Genre"))
    with pytest.raises(LlamarchError) as e:
        load_questions(path, open_readonly(db))
    assert_error(e, f"{path}:1", "read-only", "fix or remove that line")


def test_a_reference_with_no_rows(tmp_path: Path, db: Path) -> None:
    path = write(tmp_path, line("Polka?", "SELECT Name FROM Genre WHERE Name = 'Polka'"))
    with pytest.raises(LlamarchError) as e:
        load_questions(path, open_readonly(db))
    assert_error(e, f"{path}:1", "no rows", "fix or remove that line")


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(LlamarchError) as e:
        load_questions(path)
    assert_error(e, str(path), "not found")


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"question": "Café?"}\n'.encode("latin-1"))
    with pytest.raises(LlamarchError) as e:
        load_questions(path)
    assert_error(e, str(path), "UTF-8")
