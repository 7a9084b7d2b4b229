"""The shipped Chinook sample database and its held-out text-to-SQL test set."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "llamarch" / "data" / "chinook"
DB = DATA / "Chinook_Sqlite.sqlite"
QUESTIONS = DATA / "test.jsonl"
CHECKER = ROOT / "benchmarks" / "data" / "check_questions.py"


def _connect() -> sqlite3.Connection:
    return sqlite3.connect(f"file:{DB}?mode=ro", uri=True)


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


@pytest.fixture(scope="module")
def conn():
    c = _connect()
    yield c
    c.close()


@pytest.fixture(scope="module")
def items() -> list[dict]:
    with QUESTIONS.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_licence_and_readme_shipped():
    licence = (DATA / "LICENSE.md").read_text(encoding="utf-8")
    assert "Luis Rocha" in licence
    assert "Permission is hereby granted, free of charge" in licence
    assert (DATA / "README.md").is_file()


def test_db_tables_and_row_counts(conn):
    tables = {
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    }
    assert len(tables) == 11
    expected = {"Track": 3503, "Customer": 59, "Invoice": 412, "InvoiceLine": 2240}
    for table, rows in expected.items():
        assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == rows, table


def test_db_is_opened_read_only(conn):
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("CREATE TABLE scratch (x INTEGER)")


def test_question_file_shape(items):
    assert len(items) >= 150
    for n, item in enumerate(items, 1):
        assert isinstance(item, dict), n
        for field in ("question", "sql", "kind"):
            assert isinstance(item.get(field), str) and item[field].strip(), (n, field)
    assert len({item["kind"] for item in items}) >= 8


def test_no_duplicate_questions(items):
    seen: dict[str, int] = {}
    for n, item in enumerate(items, 1):
        key = _normalize(item["question"])
        assert key not in seen, f"question {n} repeats question {seen.get(key)}"
        seen[key] = n


def test_every_reference_runs_and_is_non_empty(conn, items):
    for n, item in enumerate(items, 1):
        rows = conn.execute(item["sql"]).fetchall()
        assert rows, f"question {n} returns no rows: {item['sql']}"


def test_checker_passes():
    proc = subprocess.run(
        [sys.executable, str(CHECKER), str(QUESTIONS), str(DB)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = json.loads(proc.stdout)
    assert proc.returncode == 0 and summary["ok"], summary["problems"]
