"""Question files: JSON Lines of {"question": ..., "sql": ...}, checked line by line."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LlamarchError
from ..jsonl import read_jsonl
from .guard import QueryFailed, run_query

_SHAPE = '{"question": "...", "sql": "..."}'


@dataclass(frozen=True)
class Question:
    question: str
    sql: str | None
    source: str  # "file:line"


def _validator(require_sql: bool):
    def validate(obj: Any) -> str | None:
        if not isinstance(obj, dict):
            return f"expected a JSON object like {_SHAPE}"
        q = obj.get("question")
        if not isinstance(q, str) or not q.strip():
            return f'expected a non-empty "question" string, like {_SHAPE}'
        sql = obj.get("sql")
        if sql is None and not require_sql:
            return None
        if not isinstance(sql, str) or not sql.strip():
            return f'expected a non-empty "sql" string (the reference query), like {_SHAPE}'
        return None

    return validate


def load_questions(
    path: str | os.PathLike, conn: sqlite3.Connection | None = None, *, require_sql: bool = False
) -> list[Question]:
    """The questions of a JSONL file; with conn, every reference query must run and return rows."""
    p = Path(path)
    if not p.is_file():
        raise LlamarchError(f"questions file not found: {p}: pass a JSONL file with one {_SHAPE} per line")
    questions = []
    try:
        for lineno, obj in read_jsonl(p, validate=_validator(require_sql)):
            sql = obj.get("sql")
            questions.append(Question(obj["question"].strip(), sql.strip() if sql else None, f"{p}:{lineno}"))
    except UnicodeDecodeError:
        raise LlamarchError(f"{p} is not UTF-8 text: save the questions file as UTF-8") from None
    if conn is not None:
        for q in questions:
            if q.sql is not None:
                _check_reference(conn, q)
    return questions


def _check_reference(conn: sqlite3.Connection, q: Question) -> None:
    try:
        result = run_query(conn, q.sql or "")
    except QueryFailed as e:
        raise LlamarchError(f"{q.source}: the reference SQL fails ({e.reason}): fix or remove that line") from None
    if not result.rows:
        raise LlamarchError(f"{q.source}: the reference SQL returns no rows: fix or remove that line")
    if result.truncated:
        raise LlamarchError(
            f"{q.source}: the reference SQL returns more than {len(result.rows)} rows: fix or remove that line"
        )
