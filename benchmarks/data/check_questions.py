"""Check a text-to-SQL question file against its SQLite database.

    python benchmarks/data/check_questions.py llamarch/data/chinook/test.jsonl \
        llamarch/data/chinook/Chinook_Sqlite.sqlite

Each line of the JSONL file is {"question": ..., "sql": ..., "kind": ...}. The
checker opens the database read-only and verifies that every line is valid
JSON with the three fields, every reference executes and returns at least one
row, no two questions are the same once normalized (lowercase, punctuation and
whitespace collapsed), and no two references return the same result (compared
as sorted multisets of rows). It prints a JSON summary (counts per kind and the
problems found) and exits 1 on any problem. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from collections import Counter
from pathlib import Path

REQUIRED = ("question", "sql", "kind")


def normalize_question(text: str) -> str:
    """Lowercase, turn punctuation into spaces, collapse whitespace."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return " ".join(text.split())


def result_key(rows: list[tuple]) -> tuple:
    """A result as a sorted multiset of rows, comparable across queries."""
    return tuple(sorted(tuple(repr(v) for v in row) for row in rows))


def connect_ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db.resolve()}?mode=ro", uri=True)


def check(jsonl: Path, db: Path) -> dict:
    problems: list[str] = []
    kinds: Counter[str] = Counter()
    seen_questions: dict[str, int] = {}
    seen_results: dict[tuple, int] = {}
    conn = connect_ro(db)
    n = 0
    with jsonl.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                problems.append(f"line {lineno}: blank line")
                continue
            n += 1
            try:
                item = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"line {lineno}: invalid JSON ({e})")
                continue
            if not isinstance(item, dict):
                problems.append(f"line {lineno}: not a JSON object")
                continue
            missing = [k for k in REQUIRED if not isinstance(item.get(k), str) or not item[k].strip()]
            if missing:
                problems.append(f"line {lineno}: missing or empty field(s) {missing}")
                continue
            kinds[item["kind"]] += 1
            q = normalize_question(item["question"])
            if q in seen_questions:
                problems.append(f"line {lineno}: duplicate question of line {seen_questions[q]}")
            else:
                seen_questions[q] = lineno
            try:
                rows = conn.execute(item["sql"]).fetchall()
            except sqlite3.Error as e:
                problems.append(f"line {lineno}: SQL error: {e}")
                continue
            if not rows:
                problems.append(f"line {lineno}: empty result")
                continue
            key = result_key(rows)
            if key in seen_results:
                problems.append(f"line {lineno}: same result as line {seen_results[key]}")
            else:
                seen_results[key] = lineno
    conn.close()
    return {
        "file": str(jsonl),
        "db": str(db),
        "questions": n,
        "kinds": dict(sorted(kinds.items())),
        "problems": problems,
        "ok": not problems,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("jsonl", type=Path)
    ap.add_argument("db", type=Path)
    args = ap.parse_args(argv)
    if not args.db.is_file():
        print(json.dumps({"ok": False, "problems": [f"no database at {args.db}"]}, indent=2))
        return 1
    summary = check(args.jsonl, args.db)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
