"""SQLite storage: conversations, generations, judgments — anything a run must not lose.

Schema changes are named migrations, applied in order on open and recorded in
`_migrations` (simonw/llm's pattern). Migrations are append-only: never edit one that
has shipped; add a new one. Names, not numbers, so work merged from several branches
cannot collide.

Each write commits at once, so a killed process loses at most the item in flight.

Results are keyed by what they depend on (`result_key`). A part that older versions keyed
by another form (a model's identity: its file name and size before its sha256) gives its
old forms too; a result stored under an old key is found, and copied once to the new one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
        """The result stored under `key`, else under one of its aliases (then copied to `key`)."""
        for k in key.forms() if isinstance(key, Key) else (key,):
            row = self.db.execute("SELECT value FROM results WHERE kind=? AND key=?", (kind, str(k))).fetchone()
            if row is not None:
                if k != key:  # stored by an older version: copied with its time; the old row stays for that version
                    self.db.execute(
                        "INSERT OR IGNORE INTO results SELECT kind, ?, value, created FROM results "
                        "WHERE kind=? AND key=?",
                        (str(key), kind, str(k)),
                    )
                return json.loads(row[0])
        return None

    def put_result(self, kind: str, key: str, value: Any) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
            (kind, str(key), json.dumps(value, ensure_ascii=False), time.time()),
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


@runtime_checkable
class KeyPart(Protocol):
    """A key part with more than one form: the current one first, then those older versions used."""

    def key_forms(self) -> Sequence[Any]: ...


class Key(str):
    """A result key, with `aliases`: the keys older versions stored the same result under."""

    aliases: tuple[str, ...]

    def __new__(cls, value: str, aliases: Sequence[str] = ()) -> Key:
        key = super().__new__(cls, value)
        key.aliases = tuple(a for a in dict.fromkeys(aliases) if a != value)
        return key

    def forms(self) -> tuple[str, ...]:
        return (str(self), *self.aliases)


def result_key(*parts: Any) -> Key:
    """A stable key for a work item from what its result depends on (prompt, model, settings).

    A `KeyPart` (a model's identity) counts by its current form; the key made with each of
    its older forms instead is an alias, where older versions stored the same result.
    """
    forms = [list(p.key_forms()) if isinstance(p, KeyPart) else [p] for p in parts]
    current = [f[0] for f in forms]
    aliases = [_digest([*current[:i], old, *current[i + 1 :]]) for i, f in enumerate(forms) for old in f[1:]]
    return Key(_digest(current), aliases)


def _digest(parts: Sequence[Any]) -> str:
    import hashlib

    blob = json.dumps(list(parts), sort_keys=True, ensure_ascii=False, default=_current_form)
    return hashlib.sha256(blob.encode()).hexdigest()


def _current_form(obj: Any) -> Any:
    return obj.key_forms()[0] if isinstance(obj, KeyPart) else str(obj)
