"""The read-only guard: model-written SQL runs only through here, and the database is never modified.

Three layers: the file is opened with `mode=ro`, `PRAGMA query_only` is on, and an authorizer
allows reading only (SELECT, reads, recursive CTEs, functions but `load_extension`, and a few
introspection pragmas). A progress handler stops a query past its time budget.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..errors import LlamarchError

DEFAULT_TIME_BUDGET_S = 2.0
DEFAULT_MAX_ROWS = 10_000
BUSY_TIMEOUT_S = 1.0
MAX_VALUE_BYTES = 64 * 1024 * 1024  # the longest string or blob one query may build
PROGRESS_STEPS = 1000
# Pragmas that only read: the first five take a table or index name, never a setting; data_version
# (a counter that cannot be set) is what FTS5 asks before each read of its index.
READ_PRAGMAS = frozenset({"table_info", "table_xinfo", "index_list", "index_info", "foreign_key_list", "data_version"})
_ALLOWED = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})
_ACTIONS = {
    1: "CREATE INDEX",
    2: "CREATE TABLE",
    3: "CREATE TEMP INDEX",
    4: "CREATE TEMP TABLE",
    5: "CREATE TEMP TRIGGER",
    6: "CREATE TEMP VIEW",
    7: "CREATE TRIGGER",
    8: "CREATE VIEW",
    9: "DELETE",
    10: "DROP INDEX",
    11: "DROP TABLE",
    12: "DROP TEMP INDEX",
    13: "DROP TEMP TABLE",
    14: "DROP TEMP TRIGGER",
    15: "DROP TEMP VIEW",
    16: "DROP TRIGGER",
    17: "DROP VIEW",
    18: "INSERT",
    19: "PRAGMA",
    22: "TRANSACTION",
    23: "UPDATE",
    24: "ATTACH",
    25: "DETACH",
    26: "ALTER TABLE",
    27: "REINDEX",
    28: "ANALYZE",
    29: "CREATE VIRTUAL TABLE",
    30: "DROP VIRTUAL TABLE",
    32: "SAVEPOINT",
}
_SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"})
_SCHEMA_WRITE = "CREATE, DROP or ALTER"
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})


class DatabaseError(LlamarchError):
    """A database file that cannot be opened for reading."""


class QueryFailed(Exception):
    """A query that was refused, failed, or ran past its time budget; `.reason` is one line."""

    def __init__(self, reason: str):
        self.reason = " ".join(str(reason).split()) or "the query failed"
        super().__init__(self.reason)


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    truncated: bool
    seconds: float


class _Authorizer:
    """Allows reading only, and remembers what it refused last (for the error message)."""

    def __init__(self) -> None:
        self.refused: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
        if action in _ALLOWED:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() not in _DENIED_FUNCTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in READ_PRAGMAS:
            return sqlite3.SQLITE_OK  # their argument is a table or index name, never a setting
        self.refused = _describe_action(action, arg1, arg2)
        return sqlite3.SQLITE_DENY


def _describe_action(action: int, arg1: str | None, arg2: str | None) -> str:
    if action == sqlite3.SQLITE_FUNCTION:
        return f"{arg2}()"
    if action == sqlite3.SQLITE_PRAGMA:
        return f"PRAGMA {arg1}" + (f" = {arg2}" if arg2 is not None else "")
    if action in (9, 18, 23) and (arg1 or "").lower() in _SCHEMA_TABLES:
        return _SCHEMA_WRITE  # DDL shows up first as a write to the schema table
    return _ACTIONS.get(action, f"action {action}")


class ReadOnlyConnection(sqlite3.Connection):
    """A connection opened by open_readonly: it knows its path and its authorizer."""

    path: str = ""
    authorizer: _Authorizer | None = None


def open_readonly(path: str | os.PathLike) -> sqlite3.Connection:
    """Open an SQLite database for reading only; DatabaseError when it cannot be read."""
    p = Path(path)
    if not p.exists():
        raise DatabaseError(f"database not found: {p}: check the path")
    if p.is_dir():
        raise DatabaseError(f"{p} is a directory, not an SQLite database file: pass the .sqlite file")
    if p.stat().st_size == 0:
        raise DatabaseError(f"{p} is empty (0 bytes), not an SQLite database: pass a database file")
    resolved = p.resolve()
    uri = f"file:{quote(resolved.as_posix())}?mode=ro"
    if _wal_without_side_files(resolved):
        uri += "&immutable=1"  # reading must not leave -wal/-shm files next to a closed database
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, factory=ReadOnlyConnection)
    except sqlite3.Error as e:
        raise DatabaseError(f"cannot open {p}: {e}: check the file's permissions") from None
    assert isinstance(conn, ReadOnlyConnection)
    conn.path = str(p)
    conn.text_factory = lambda b: b.decode("utf-8", errors="replace")
    try:
        conn.execute("PRAGMA query_only = ON")
        _set_limits(conn)
        _connect_virtual_tables(conn)
        conn.authorizer = _Authorizer()
        conn.set_authorizer(conn.authorizer)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except sqlite3.Error as e:
        conn.close()
        raise DatabaseError(_open_error(p, e)) from None
    return conn


def quote_name(name: str) -> str:
    """An identifier in double quotes, inner double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def _connect_virtual_tables(conn: sqlite3.Connection) -> None:
    """Construct each virtual table (FTS, R*Tree) once, before the authorizer is on.

    SQLite builds a virtual table the first time a statement names it, and that step
    declares its columns as a schema write, which the authorizer refuses: a SELECT from
    an FTS table would fail with "vtable constructor failed". Built here, on a connection
    already read-only and query_only, the table is reused by every later statement. Only
    SQLite's built-in modules can be named (no extension can load), and one whose module
    is missing is left alone: a query that names it fails as a check.
    """
    names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")
    for (name,) in names.fetchall():
        try:
            conn.execute(f"SELECT * FROM {quote_name(name)} LIMIT 0").fetchall()
        except sqlite3.Error:
            pass


def _wal_without_side_files(path: Path) -> bool:
    """A WAL-mode database that no one has open (its -wal and -shm files are gone)."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
    except OSError:
        return False
    wal = header.startswith(b"SQLite format 3\0") and header[18:20] == b"\x02\x02"
    side = [Path(f"{path}-wal"), Path(f"{path}-shm")]
    return wal and not any(s.exists() for s in side)


def _set_limits(conn: sqlite3.Connection) -> None:
    setlimit = getattr(conn, "setlimit", None)  # Python >= 3.11
    if setlimit is not None:
        setlimit(getattr(sqlite3, "SQLITE_LIMIT_ATTACHED", 7), 0)
        setlimit(getattr(sqlite3, "SQLITE_LIMIT_LENGTH", 0), MAX_VALUE_BYTES)


def _open_error(path: Path, e: sqlite3.Error) -> str:
    msg = str(e)
    if "not a database" in msg:
        return f"{path} is not an SQLite database (or it is encrypted): pass a plain, unencrypted SQLite database file"
    if "locked" in msg or "busy" in msg:
        return f"database {path} is locked by another connection: close the program that is writing to it and try again"
    return f"cannot read database {path}: {' '.join(msg.split())}: check that it is a valid SQLite file"


def run_query(
    conn: sqlite3.Connection,
    sql: str,
    *,
    time_budget_s: float = DEFAULT_TIME_BUDGET_S,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> QueryResult:
    """Run one read-only statement; QueryFailed when it is refused, fails or takes too long."""
    if not isinstance(sql, str) or not sql.strip().strip(";").strip():
        raise QueryFailed("empty query: write one SELECT statement")
    return _execute(conn, sql, (), time_budget_s, max_rows)


def introspect(
    conn: sqlite3.Connection, sql: str, params: Sequence = (), time_budget_s: float = DEFAULT_TIME_BUDGET_S
) -> list[tuple]:
    """The guard's own schema queries (sqlite_master, PRAGMA table_info, ...), with parameters."""
    return list(_execute(conn, sql, params, time_budget_s, DEFAULT_MAX_ROWS).rows)


def _execute(conn: sqlite3.Connection, sql: str, params: Sequence, time_budget_s: float, max_rows: int) -> QueryResult:
    cur = conn.cursor()  # a closed connection or a wrong thread is a bug: let it raise
    cur.row_factory = None
    guard = getattr(conn, "authorizer", None)
    if guard is not None:
        guard.refused = None
    start = time.perf_counter()
    deadline = start + time_budget_s
    timed_out = [False]

    def progress() -> int:
        if time.perf_counter() > deadline:
            timed_out[0] = True
            return 1
        return 0

    conn.set_progress_handler(progress, PROGRESS_STEPS)
    try:
        cur.execute(sql, params)
        if cur.description is None:
            raise QueryFailed("empty query: write one SELECT statement")
        columns = tuple(d[0] for d in cur.description)
        rows: list[tuple] = []
        while len(rows) <= max_rows:
            batch = cur.fetchmany(min(1000, max_rows + 1 - len(rows)))
            if not batch:
                break
            rows.extend(batch)
    except (sqlite3.Error, sqlite3.Warning, ValueError, OverflowError, MemoryError) as e:
        raise QueryFailed(_failure_reason(e, sql, timed_out[0], time_budget_s, guard)) from None
    finally:
        conn.set_progress_handler(None, 0)
        cur.close()  # resets the statement: no read transaction stays open
    truncated = len(rows) > max_rows
    return QueryResult(columns, tuple(tuple(r) for r in rows[:max_rows]), truncated, time.perf_counter() - start)


def _failure_reason(e: BaseException, sql: str, timed_out: bool, budget: float, guard: _Authorizer | None) -> str:
    msg = " ".join(str(e).split())
    if timed_out:
        return f"took longer than {budget} s"
    if "one statement at a time" in msg:
        return "more than one statement: write a single SELECT statement"
    if "not authorized" in msg or "authorization denied" in msg or "readonly database" in msg:
        what = guard.refused if guard is not None else None
        if what == _SCHEMA_WRITE or sql.lstrip()[:6].upper() == "VACUUM":
            what = _statement_kind(sql)
        return "not allowed: this connection is read-only" + (f" ({what})" if what else "")
    if isinstance(e, MemoryError):
        return "the result is too large to hold in memory"
    return msg or type(e).__name__


def _statement_kind(sql: str) -> str:
    """`DROP TABLE`, `CREATE INDEX`, ...: what a statement that writes the schema is."""
    words = sql.upper().split()
    if words and words[0] == "VACUUM":
        return "VACUUM"
    if words and words[0] in ("CREATE", "DROP", "ALTER"):
        n = 3 if len(words) > 2 and words[1] in ("TEMP", "TEMPORARY", "VIRTUAL", "UNIQUE") else 2
        return " ".join(words[:n])
    return "table-valued PRAGMA function" if "PRAGMA_" in sql.upper() else "schema change"
