"""SQLite storage: conversations, generations, judgments — anything a run must not lose.

Schema changes are named migrations, applied in order on open and recorded in
`_migrations` (simonw/llm's pattern). Migrations are append-only: never edit one that
has shipped; add a new one. Names, not numbers, so work merged from several branches
cannot collide.

Each write commits at once, so a killed process loses at most the item in flight.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import paths
from .errors import LlamarchError

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    """Register a migration; it runs once per database, in registration order."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_results(db: sqlite3.Connection) -> None:
    # Finished work items of resumable jobs (distill, judge, eval), keyed by what they depend on.
    db.execute(
        """CREATE TABLE results (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (kind, key)
        )"""
    )


@migration
def m002_conversations(db: sqlite3.Connection) -> None:
    # Chat conversations: one row each; `system` is the current system prompt.
    db.execute(
        """CREATE TABLE conversations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            model TEXT NOT NULL,
            backend TEXT NOT NULL,
            system TEXT,
            options TEXT NOT NULL DEFAULT '{}',
            created REAL NOT NULL,
            updated REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX conversations_updated ON conversations (updated)")
    # Every message of a conversation, in order; stats/options are JSON, on assistant replies.
    db.execute(
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            model TEXT,
            options TEXT,
            stats TEXT,
            cancelled INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL,
            UNIQUE (conversation_id, seq)
        )"""
    )
    # Names given with /save, for /load.
    db.execute(
        """CREATE TABLE saved_conversations (
            name TEXT PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            created REAL NOT NULL
        )"""
    )


def default_path() -> Path:
    return paths.user_dir() / "llamarch.db"


class Store:
    """A SQLite database with llamarch's schema, migrated on open."""

    def __init__(self, path: str | Path | None = None, timeout: float = 5.0):
        self.path = Path(path) if path else default_path()
        paths.ensure_dir(self.path.parent)
        try:
            self.db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise _store_error(self.path, e) from None

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL)")
        done = {row[0] for row in self.db.execute("SELECT name FROM _migrations")}
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            with self.transaction():
                fn(self.db)
                self.db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn SQLite errors (locked, damaged, disk full) into one-line LlamarchErrors."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            raise _store_error(self.path, e) from None

    # --- results of resumable jobs -------------------------------------------------

    def get_result(self, kind: str, key: str) -> Any | None:
        row = self.db.execute("SELECT value FROM results WHERE kind=? AND key=?", (kind, key)).fetchone()
        return json.loads(row[0]) if row else None

    def put_result(self, kind: str, key: str, value: Any) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
            (kind, key, json.dumps(value, ensure_ascii=False), time.time()),
        )

    def results(self, kind: str) -> dict[str, Any]:
        rows = self.db.execute("SELECT key, value FROM results WHERE kind=?", (kind,))
        return {k: json.loads(v) for k, v in rows}

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _store_error(path: Path, e: sqlite3.DatabaseError) -> LlamarchError:
    text = str(e)
    if "locked" in text:
        return LlamarchError(f"store {path} is locked by another llamarch process: close it and retry")
    if "not a database" in text or "malformed" in text:
        return LlamarchError(
            f"store {path} is damaged ({text}): move it aside (it will be recreated) or point LLAMARCH_HOME elsewhere"
        )
    if "disk is full" in text or "disk I/O" in text:
        return LlamarchError(f"store {path} cannot be written ({text}): free some disk space and retry")
    if "readonly" in text:
        return LlamarchError(f"store {path} is read-only: check its permissions or point LLAMARCH_HOME elsewhere")
    return LlamarchError(f"store {path}: {text}")


def result_key(*parts: Any) -> str:
    """A stable key for a work item from what its result depends on (prompt, model, settings)."""
    import hashlib

    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
