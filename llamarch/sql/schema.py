"""The schema text for a prompt, read from the database itself (nothing specific to any database)."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

from ..errors import LlamarchError
from .guard import DatabaseError, QueryFailed, introspect, quote_name, run_query

SCHEMA_STYLES = ("compact", "create", "ddl", "none")  # shortest first; none: no schema at all
_USER_OBJECTS = "name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
# The tables FTS3/4/5 and R*Tree keep their index in, named after the virtual table: `docs_data`
_SHADOW_SUFFIXES = ("content", "segments", "segdir", "docsize", "stat", "data", "idx", "config")
_SHADOW_SUFFIXES += ("node", "rowid", "parent")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = frozenset(
    {
        "order",
        "group",
        "select",
        "from",
        "where",
        "table",
        "index",
        "key",
        "values",
        "by",
        "as",
        "join",
        "on",
        "limit",
        "check",
        "default",
        "transaction",
        "to",
    }
)


@dataclass
class Column:
    name: str
    type: str
    primary_key: bool
    not_null: bool


@dataclass
class Table:
    name: str
    columns: list[Column]
    foreign_keys: list[tuple[str, str, str]] = field(default_factory=list)  # (column, ref_table, ref_column)
    rows: int = -1  # -1: not counted in time


def _display_name(name: str) -> str:
    plain = _PLAIN_NAME.fullmatch(name) and name.lower() not in _KEYWORDS
    return name if plain else quote_name(name)


def _read(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[tuple]:
    try:
        return introspect(conn, sql, params)
    except QueryFailed as e:
        where = getattr(conn, "path", "") or "the database"
        raise DatabaseError(f"cannot read the schema of {where}: {e.reason}: check the file") from None


def _schema_objects(conn: sqlite3.Connection, types: str) -> list[tuple[str, str, str | None]]:
    """(name, type, sql) of the user's tables or views in sqlite_master order: no sqlite_* ones,
    and no shadow tables, where a virtual table (FTS, R*Tree) keeps its index."""
    rows = _read(
        conn, f"SELECT name, type, sql FROM sqlite_master WHERE type IN ({types}) AND {_USER_OBJECTS} ORDER BY rowid"
    )
    virtual = [n.lower() + "_" for n, _, sql in rows if _is_virtual(sql)]
    return [r for r in rows if not any(r[0].lower() == v + s for v in virtual for s in _SHADOW_SUFFIXES)]


def _is_virtual(sql: str | None) -> bool:
    return (sql or "").lstrip().upper().startswith("CREATE VIRTUAL TABLE")


def _module_missing(conn: sqlite3.Connection, name: str) -> bool:
    """A virtual table whose module this SQLite lacks: no query can read it."""
    try:
        _read(conn, f"PRAGMA table_xinfo({quote_name(name)})")
    except DatabaseError:
        return True
    return False


def read_tables(conn: sqlite3.Connection) -> list[Table]:
    """The user tables (no sqlite_* or shadow ones), in sqlite_master order, with columns, keys and row counts."""
    tables = []
    for name, _, sql in _schema_objects(conn, "'table'"):
        q = quote_name(name)
        try:
            # cid, name, type, notnull, dflt, pk, hidden: table_info leaves out generated columns
            info = [r for r in _read(conn, f"PRAGMA table_xinfo({q})") if r[6] != 1]  # 1: a virtual table's hidden
        except DatabaseError:
            if _is_virtual(sql):
                continue  # its module is not in this SQLite: no query can read it either
            raise
        columns = [Column(r[1], r[2] or "", bool(r[5]), bool(r[3])) for r in info]
        order = {c.name: i for i, c in enumerate(columns)}
        fks = sorted(
            _read(conn, f"PRAGMA foreign_key_list({q})"),  # id, seq, table, from, to, ...
            key=lambda r: (order.get(r[3], len(order)), r[0], r[1]),
        )
        foreign_keys = [(r[3], r[2], r[4] or "") for r in fks]
        try:
            rows = run_query(conn, f"SELECT count(*) FROM {q}").rows[0][0]
        except QueryFailed:
            rows = -1
        tables.append(Table(name, columns, foreign_keys, rows))
    by_name = {t.name.lower(): t for t in tables}
    for t in tables:  # `REFERENCES Album` without a column means Album's primary key
        t.foreign_keys = [(c, rt, rc or _primary_key(by_name.get(rt.lower()))) for c, rt, rc in t.foreign_keys]
    return tables


def _primary_key(table: Table | None) -> str:
    keys = [c.name for c in table.columns if c.primary_key] if table else []
    return keys[0] if len(keys) == 1 else ""


def ddl(conn: sqlite3.Connection) -> str:
    """The CREATE TABLE and CREATE VIEW statements, as stored, separated by blank lines."""
    objects = _schema_objects(conn, "'table', 'view'")
    rows = [sql for name, _, sql in objects if sql and not (_is_virtual(sql) and _module_missing(conn, name))]
    return "\n\n".join("\n".join(line.rstrip() for line in sql.strip().splitlines()) for sql in rows)


def compact_schema(tables: list[Table], foreign_keys: bool = True) -> str:
    """One line per table, `Track(TrackId, Name, AlbumId, ...)`, then the joins the foreign
    keys allow as SQL a query can use, `Joins: Track.AlbumId = Album.AlbumId, ...`: short,
    for every prompt. (An `AlbumId->Album` notation was copied into queries by the 0.5B:
    `->` is an operator in SQLite.)"""
    lines = [f"{_display_name(t.name)}({', '.join(_display_name(c.name) for c in t.columns)})" for t in tables]
    joins = (
        [
            f"{_display_name(t.name)}.{_display_name(c)} = {_display_name(rt)}.{_display_name(rc)}"
            for t in tables
            for c, rt, rc in t.foreign_keys
            if rc
        ]
        if foreign_keys
        else []
    )
    if joins:
        lines.append("Joins: " + ", ".join(joins))
    return "\n".join(lines)


def create_statements(tables: list[Table]) -> str:
    """Each table as a tidy CREATE TABLE: columns with their declared types, the primary key
    and each foreign key as `REFERENCES Album(AlbumId)` on its column. The form models are
    trained on, at about half the tokens of the stored DDL (no constraint names, no ON DELETE
    clauses, no indexes)."""
    statements = []
    for t in tables:
        references = {c: (rt, rc) for c, rt, rc in t.foreign_keys if rc}
        keys = [c.name for c in t.columns if c.primary_key]
        lines = []
        for c in t.columns:
            line = " ".join(p for p in (_display_name(c.name), c.type) if p)
            if keys == [c.name]:
                line += " PRIMARY KEY"
            if c.name in references:
                rt, rc = references[c.name]
                line += f" REFERENCES {_display_name(rt)}({_display_name(rc)})"
            lines.append(line)
        if len(keys) > 1:
            lines.append(f"PRIMARY KEY ({', '.join(_display_name(k) for k in keys)})")
        statements.append(f"CREATE TABLE {_display_name(t.name)} (\n  " + ",\n  ".join(lines) + "\n);")
    return "\n\n".join(statements)


def _cell(value: object, max_chars: int) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    text = " ".join(str(value).split())
    return text if len(text) <= max_chars else text[:max_chars] + "…"


def sample_rows(conn: sqlite3.Connection, table: Table, n: int = 3, max_chars: int = 60) -> str:
    """The first n rows of a table as `a | b | c` lines under a header of column names."""
    try:
        result = run_query(conn, f"SELECT * FROM {quote_name(table.name)} LIMIT {int(n)}", max_rows=n)
    except QueryFailed:
        return f"{_display_name(table.name)}: (could not be read)"
    lines = [f"{_display_name(table.name)}:", " | ".join(result.columns)]
    lines += [" | ".join(_cell(v, max_chars) for v in row) for row in result.rows]
    return "\n".join(lines)


_sample_rows = sample_rows  # describe() has a parameter of the same name


def _is_text(declared: str) -> bool:
    t = declared.upper()  # SQLite's affinity rules: INT first, then CHAR/CLOB/TEXT
    return "INT" not in t and any(k in t for k in ("CHAR", "CLOB", "TEXT"))


def distinct_values(
    conn: sqlite3.Connection,
    tables: list[Table],
    max_distinct: int = 25,
    max_len: int = 40,
    categorical_only: bool = True,
) -> dict[str, list[str]]:
    """For each short TEXT column with at most max_distinct values: its sorted non-null values.

    With categorical_only, a column qualifies only when its values repeat, or when it is in a
    small lookup table that other tables reference (`Genre(GenreId, Name)`): names, e-mails and
    phone numbers of a small table are noise in a prompt.
    """
    referenced = {rt.lower() for t in tables for _, rt, _ in t.foreign_keys if rt.lower() != t.name.lower()}
    found: dict[str, list[str]] = {}
    for t in tables:
        lookup = t.name.lower() in referenced and len(t.columns) <= 3
        for c in t.columns:
            if not _is_text(c.type):
                continue
            values = _short_values(conn, t, c, max_distinct, max_len, categorical_only and not lookup)
            if values:
                found[f"{t.name}.{c.name}"] = values
    return found


def _short_values(
    conn: sqlite3.Connection, t: Table, c: Column, max_distinct: int, max_len: int, must_repeat: bool
) -> list[str] | None:
    q, table = quote_name(c.name), quote_name(t.name)
    try:
        rows = run_query(
            conn, f"SELECT DISTINCT {q} FROM {table} WHERE {q} IS NOT NULL LIMIT {max_distinct + 1}", time_budget_s=1.0
        ).rows
        values = [r[0] for r in rows]
        if (
            not values
            or len(values) > max_distinct
            or any(isinstance(v, bytes) for v in values)
            or any(len(str(v)) > max_len or "\n" in str(v) for v in values)
        ):
            return None
        if must_repeat and run_query(conn, f"SELECT count({q}) FROM {table}", time_budget_s=1.0).rows[0][0] <= len(
            values
        ):
            return None
    except QueryFailed:
        return None
    return sorted({str(v) for v in values})


def _value_list(values: list[str]) -> str:
    plain = [v if v.strip() == v and v and "," not in v else "'" + v.replace("'", "''") + "'" for v in values]
    return ", ".join(plain)


def describe(
    conn: sqlite3.Connection,
    *,
    style: str = "compact",
    sample_rows: int = 0,
    distinct: bool = False,
    notes: str | None = None,
) -> str:
    """The database described for a prompt: schema, then sample rows, short text values, notes."""
    if style not in SCHEMA_STYLES:
        raise LlamarchError(f"unknown schema style {style!r}: choose one of {', '.join(SCHEMA_STYLES)}")
    tables = read_tables(conn) if style in ("compact", "create") or sample_rows or distinct else []
    parts = []
    if style == "compact":
        parts.append(compact_schema(tables))
    elif style == "create":
        parts.append(create_statements(tables))
    elif style == "ddl":
        parts.append(ddl(conn))
    if sample_rows:
        parts.append("Sample rows:\n" + "\n\n".join(_sample_rows(conn, t, sample_rows) for t in tables))
    if distinct:
        values = distinct_values(conn, tables)
        if values:
            parts.append(
                "Values of short text columns:\n" + "\n".join(f"{k}: {_value_list(v)}" for k, v in values.items())
            )
    if notes and notes.strip():
        parts.append("Notes:\n" + notes.strip())
    return "\n\n".join(p for p in parts if p)


# --- what the schema says about a failed query (for the repair prompt) --------------------------

_NO_COLUMN = re.compile(r"no such column: (?:(?P<qual>[^\s.]+)\.)?(?P<col>[^\s.]+)$")
_AMBIGUOUS = re.compile(r"ambiguous column name: (?:(?P<qual>[^\s.]+)\.)?(?P<col>[^\s.]+)$")
_NO_TABLE = re.compile(r"no such table: (?:main\.)?(?P<table>\S+)$")
_IDENT = r'(?:"(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][A-Za-z0-9_$]*)'
_ALIASED = re.compile(rf"(?:\bFROM|\bJOIN|,)\s*(?P<table>{_IDENT})(?:\s+AS)?\s+(?P<alias>{_IDENT})", re.IGNORECASE)
_HINT_NAMES = 12  # at most this many tables or columns named in a hint


def _unquote(name: str) -> str:
    if len(name) > 1 and name[0] + name[-1] in ('""', "``", "[]"):
        return name[1:-1].replace('""', '"') if name[0] == '"' else name[1:-1]
    return name


def query_aliases(sql: str) -> dict[str, str]:
    """The tables a query names after FROM, JOIN or a comma, by their alias (lower-cased)."""
    found = {}
    for m in _ALIASED.finditer(sql or ""):
        table, alias = _unquote(m.group("table")), _unquote(m.group("alias"))
        if alias.upper() not in {
            "ON",
            "WHERE",
            "JOIN",
            "INNER",
            "LEFT",
            "RIGHT",
            "CROSS",
            "NATURAL",
            "FULL",
            "GROUP",
            "ORDER",
            "LIMIT",
            "USING",
            "UNION",
            "EXCEPT",
            "INTERSECT",
            "HAVING",
            "WINDOW",
            "OUTER",
            "SELECT",
            "VALUES",
        }:
            found[alias.lower()] = table
    return found


def _names(names: list[str]) -> str:
    shown = names[:_HINT_NAMES]
    return ", ".join(shown) + (f" and {len(names) - len(shown)} more" if len(names) > len(shown) else "")


def error_hint(tables: list[Table], reason: str, sql: str | None = None) -> str | None:
    """One or two sentences from the schema about what SQLite's error says is missing, for the
    repair prompt: for `no such column: T2.Name`, which table T2 is and which tables do have a
    column Name (or, when none has it, the columns whose names are close); for `no such table`,
    the tables whose names are close (else all of them); for an ambiguous column, the tables
    that have it. None for any other error (a syntax error, a time-out, ...): nothing to add."""
    import difflib

    by_name = {t.name.lower(): t for t in tables}
    reason = " ".join((reason or "").split())
    if m := _NO_COLUMN.match(reason) or _AMBIGUOUS.match(reason):
        qual, col = (_unquote(m.group("qual")) if m.group("qual") else None), _unquote(m.group("col"))
        having = [t.name for t in tables if any(c.name.lower() == col.lower() for c in t.columns)]
        if reason.startswith("ambiguous"):
            if not having:
                return None
            return (
                f"{col} is a column of {_names(having)}: write it with its table or alias "
                f"(e.g. {_display_name(having[0])}.{_display_name(col)})."
            )
        parts = []
        if qual is not None:
            aliases = query_aliases(sql or "")
            table = by_name.get(qual.lower()) or by_name.get(aliases.get(qual.lower(), "").lower())
            if table is None and qual.lower() not in aliases:
                parts.append(f"{qual} is neither a table nor an alias the query defines.")
            elif table is None:
                pass  # an alias of something else (a subquery, a CTE): nothing to say about it
            elif table.name.lower() != qual.lower():
                parts.append(f"{qual} is {table.name}, which has no column {col}.")
            else:
                parts.append(f"{table.name} has no column {col}.")
        if having:
            parts.append(f"The tables with a column {col}: {_names(having)}.")
        else:
            columns = {f"{t.name}.{c.name}": c.name.lower() for t in tables for c in t.columns}
            close = difflib.get_close_matches(col.lower(), sorted(set(columns.values())), n=5, cutoff=0.6)
            similar = [q for c in close for q, name in columns.items() if name == c]
            parts.append(
                f"No table has a column {col}" + (f"; similar columns: {_names(similar)}." if similar else ".")
            )
        return " ".join(parts)
    if m := _NO_TABLE.match(reason):
        missing = _unquote(m.group("table"))
        close = difflib.get_close_matches(missing.lower(), list(by_name), n=5, cutoff=0.6)
        if close:
            return f"There is no table {missing}; similar tables: {_names([by_name[c].name for c in close])}."
        return f"There is no table {missing}; the tables are: {_names([t.name for t in tables])}."
    return None
