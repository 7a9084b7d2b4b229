"""Queries written from the schema and the data, correct by construction (`distill --from-queries N`).

Voting makes the teacher's answers to its own questions right about three times in four,
and the rows it can verify are the easy ones. Here the direction is reversed: a query is
built from the database's own tables, foreign keys and values (a look-up, a count, a
top-N list, a join of two to five tables along their foreign keys, a self-join, a group,
a date, a subquery), run read-only, and kept when it returns a small non-empty result; the
teacher then only writes the question each query answers, which is far easier than
writing the query. Nothing here knows any particular database.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .guard import QueryFailed, run_query
from .match import result_signature
from .schema import Column, Table, _display_name, _is_text, quote_name

MAX_RESULT_ROWS = 20  # a question whose answer is a long list is a poor question
JOIN_HOPS = (1, 1, 2, 2, 3, 4)  # foreign keys a join follows, drawn evenly: 2 to 5 tables


# Which rendering of the draws this is: a run stores its built queries under it, so a resumed
# run rebuilds when the same draws would now read differently. Raise it with any such change.
BUILDER_VERSION = 1


@dataclass(frozen=True)
class SampledQuery:
    base: str  # the query without its LIMIT; when limited, ordered by its last column
    kind: (
        str  # lookup | count | aggregate | top | group | join | path | join-group | self-join | date | subquery
        # | null | having | none | some
    )
    limit: int | None = None

    @property
    def sql(self) -> str:
        return self.base if self.limit is None else f"{self.base} LIMIT {self.limit}"


# A number whose name says it is a point in time (`placed_unix`, `created_at`, `UpdatedAt`,
# `Timestamp`, read as a part of the name: `UpdateCount` is a count): its sum or average is no
# question anyone asks.
_TIME_POINT_NAME = re.compile(
    r"(?i:(?:^|_)(?:unix|epoch|timestamp|date)(?:_|$))|(?:Unix|Epoch|Timestamp|Date)|_(?i:at)$|[a-z]At$"
)


def _is_number(c: Column) -> bool:
    t = c.type.upper()
    numeric = any(k in t for k in ("INT", "REAL", "NUM", "DEC", "FLOA", "DOUB"))
    return numeric and not _is_date(c) and not _TIME_POINT_NAME.search(c.name)


def _is_date(c: Column) -> bool:
    t = c.type.upper()
    return "DATE" in t or "TIME" in t


def _is_key(table: Table, c: Column) -> bool:
    return c.primary_key or any(col == c.name for col, _, _ in table.foreign_keys) or c.name.lower().endswith("id")


def _col(table: Table, c: Column) -> str:
    return f"{_display_name(table.name)}.{_display_name(c.name)}"


def _literal(value: object) -> str:
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _alias(key: str, table: str) -> str:
    """The name a self-join gives the row a foreign key points to: the key without its id
    (`BossId` -> `Boss`, `ReportsTo`), so that the query says which way it reads."""
    name = re.sub(r"_?id$", "", key, flags=re.IGNORECASE) or key
    if name.lower() == table.lower():
        name = f"{name}_ref"
    return _display_name(name)


class QuerySampler:
    """Random queries over one database, reproducible from a seed."""

    def __init__(self, conn: sqlite3.Connection, tables: list[Table], seed: int = 0):
        self.conn = conn
        self.tables = [t for t in tables if t.rows > 0 and t.columns]
        self.by_name = {t.name.lower(): t for t in self.tables}
        self.rng = random.Random(seed)

    # --- pieces ---------------------------------------------------------------------

    def _columns(self, t: Table, test: Callable[[Column], bool]) -> list[Column]:
        return [c for c in t.columns if test(c) and not _is_key(t, c)]

    def _label(self, t: Table) -> Column:
        """The column that names a row: its first text column, else its key."""
        texts = self._columns(t, lambda c: _is_text(c.type))
        return texts[0] if texts else t.columns[0]

    def _value(self, t: Table, c: Column) -> object | None:
        """A value that column really holds, from a random row."""
        return self._pick(quote_name(c.name), quote_name(t.name))

    def _pick(self, col: str, clause: str, time_budget_s: float | None = None) -> object | None:
        """The value of `col` on a random row of `clause` where it is not NULL; None when there is
        none, or it is too long or binary to make a question of."""
        budget = {} if time_budget_s is None else {"time_budget_s": time_budget_s}
        try:
            count = run_query(self.conn, f"SELECT count({col}) FROM {clause}", **budget).rows[0][0]
            if not count:
                return None
            sql = f"SELECT {col} FROM {clause} WHERE {col} IS NOT NULL LIMIT 1 OFFSET {self.rng.randrange(count)}"
            value = run_query(self.conn, sql, **budget).rows[0][0]
        except (QueryFailed, IndexError):
            return None
        if isinstance(value, bytes) or (isinstance(value, str) and (len(value) > 40 or "\n" in value)):
            return None
        return value

    def _edges(self, t: Table, forward: bool = False) -> list[tuple[Table, str]]:
        """Tables one foreign key away from t (either direction, or only t's own keys when
        `forward`), with the join condition."""
        out = []
        for col, rt, rc in t.foreign_keys:
            other = self.by_name.get(rt.lower())
            if other and other is not t and rc:
                cond = f"{_display_name(t.name)}.{_display_name(col)} = {_col(other, Column(rc, '', 0, 0))}"
                out.append((other, cond))
        if forward:
            return out
        for other in self.tables:
            for col, rt, rc in other.foreign_keys:
                if rt.lower() == t.name.lower() and other is not t and rc:
                    cond = f"{_display_name(other.name)}.{_display_name(col)} = {_col(t, Column(rc, '', 0, 0))}"
                    out.append((other, cond))
        return out

    def _path(self, length: int, forward: bool = False) -> tuple[list[Table], str] | None:
        """A chain of `length` + 1 distinct tables joined on foreign keys, as a FROM clause;
        `forward`: each step follows a foreign key of the table before (many rows to one)."""
        starts = [t for t in self.tables if self._edges(t, forward)] if forward else self.tables
        if not starts:
            return None
        start = self.rng.choice(starts)
        path, clause = [start], _display_name(start.name)
        for _ in range(length):
            steps = [(o, cond) for o, cond in self._edges(path[-1], forward) if o not in path]
            if not steps:
                return None
            other, cond = self.rng.choice(steps)
            path.append(other)
            clause += f" JOIN {_display_name(other.name)} ON {cond}"
        return path, clause

    # --- templates ------------------------------------------------------------------

    def _one_table(self) -> SampledQuery | None:
        t = self.rng.choice(self.tables)
        texts = self._columns(t, lambda c: _is_text(c.type))
        numbers = self._columns(t, _is_number)
        dates = [c for c in t.columns if _is_date(c)]
        name, table = _col(t, self._label(t)), _display_name(t.name)
        kind = self.rng.choice(["lookup", "count", "aggregate", "top", "group", "date", "subquery", "null"])
        if kind in ("lookup", "count") and texts:
            c = self.rng.choice(texts)
            value = self._value(t, c)
            if value is None:
                return None
            where = f"{_col(t, c)} = {_literal(value)}"
            others = [x for x in t.columns if x.name != c.name]  # never the column it filters on
            others = [x for x in others if not _is_key(t, x)] or others
            shown = self.rng.choice(others)
            what = "count(*)" if kind == "count" else _col(t, shown)
            if kind == "lookup" and self._label(t).name not in (c.name, shown.name) and _is_text(self._label(t).type):
                what = f"{name}, {what}"  # the rows named, so that a list reads as a list
            return SampledQuery(f"SELECT {what} FROM {table} WHERE {where}", kind)
        if kind == "aggregate" and numbers:
            c = self.rng.choice(numbers)
            fn = self.rng.choice(["avg", "max", "min", "sum"])
            return SampledQuery(f"SELECT {fn}({_col(t, c)}) FROM {table}", kind)
        if kind == "top" and numbers:
            c = self.rng.choice(numbers)
            order = self.rng.choice(["DESC", "ASC"])
            n = self.rng.choice([1, 3, 5])
            return SampledQuery(f"SELECT {name}, {_col(t, c)} FROM {table} ORDER BY {_col(t, c)} {order}", kind, n)
        if kind == "group" and texts:
            c = self.rng.choice(texts)
            return SampledQuery(
                f"SELECT {_col(t, c)}, count(*) FROM {table} GROUP BY {_col(t, c)} ORDER BY count(*) DESC", kind, 5
            )
        if kind == "date" and dates:
            c = self.rng.choice(dates)
            value = self._value(t, c)
            if not isinstance(value, str) or len(value) < 4:
                return None
            what = self.rng.choice(["count(*)", f"min({_col(t, c)})"])
            return SampledQuery(f"SELECT {what} FROM {table} WHERE strftime('%Y', {_col(t, c)}) = '{value[:4]}'", kind)
        if kind == "subquery" and numbers:
            c = self.rng.choice(numbers)
            col = _col(t, c)
            return SampledQuery(
                f"SELECT {name}, {col} FROM {table} WHERE {col} > (SELECT avg({col}) FROM {table}) ORDER BY {col} DESC",
                kind,
                5,
            )
        if kind == "null":
            nullable = [c for c in t.columns if not c.not_null and not c.primary_key]
            if nullable:
                c = self.rng.choice(nullable)
                return SampledQuery(f"SELECT count(*) FROM {table} WHERE {_col(t, c)} IS NULL", kind)
        return None

    def _joined_value(self, clause: str, t: Table, c: Column) -> object | None:
        """A value of t.c on a random row of the join, so that a filter on it finds rows."""
        return self._pick(_col(t, c), clause, time_budget_s=1.0)

    def _joined(self) -> SampledQuery | None:
        """The rows of one end of a join that match a value at the other (or a group: 40%)."""
        if self.rng.random() >= 0.6:
            return self._joined_group()
        found = self._path(self.rng.choice(JOIN_HOPS))
        if not found:
            return None
        path, clause = found
        first, last = path[0], path[-1]
        texts = self._columns(last, lambda c: _is_text(c.type))
        if not texts:
            return None
        c = self.rng.choice(texts)
        value = self._joined_value(clause, last, c)
        if value is None:
            return None
        label = _col(first, self._label(first))
        what = self.rng.choice([f"DISTINCT {label}", f"count(DISTINCT {label})"])
        kind = "join" if len(path) == 2 else "path"
        return SampledQuery(f"SELECT {what} FROM {clause} WHERE {_col(last, c)} = {_literal(value)}", kind)

    def _joined_group(self) -> SampledQuery | None:
        """A count or sum of the first table's rows per named row of the last, along foreign keys
        followed forward: each first row meets one last row, so the count counts first rows."""
        found = self._path(self.rng.choice(JOIN_HOPS), forward=True)
        if not found:
            return None
        path, clause = found
        first, last = path[0], path[-1]
        texts = self._columns(last, lambda c: _is_text(c.type))
        if not texts:
            return None
        label = _col(last, texts[0])
        numbers = self._columns(first, _is_number)
        named = bool(self._columns(first, lambda c: _is_text(c.type)))  # rows with names, not keys or line items
        if numbers and (not named or self.rng.random() < 0.5):
            measure = f"sum({_col(first, self.rng.choice(numbers))})"
        elif named:  # a count of a table of keys (PlaylistTrack) reads as a count of what they point to
            measure = "count(*)"
        else:
            return None
        return SampledQuery(
            f"SELECT {label}, {measure} FROM {clause} GROUP BY {label} ORDER BY {measure} DESC", "join-group", 5
        )

    def _self_joined(self) -> SampledQuery | None:
        """The rows a row points to through a foreign key into its own table (who reports to whom)."""
        linked = [(t, col, rc) for t in self.tables for col, rt, rc in t.foreign_keys if rt.lower() == t.name.lower()]
        if not linked:
            return None
        t, col, rc = self.rng.choice(linked)
        name = self._label(t)  # shown and given by name: "whom an address reports to" reads backwards
        if not rc or not _is_text(name.type):
            return None
        value = self._value(t, name)
        if value is None:
            return None
        table, label, other = _display_name(t.name), _display_name(name.name), _alias(col, t.name)
        clause = f"{table} JOIN {table} AS {other} ON {table}.{_display_name(col)} = {other}.{_display_name(rc)}"
        # the rows that point to a given one (who reports to X), or the one a given row points to
        shown, given = (table, other) if self.rng.random() < 0.5 else (other, table)
        return SampledQuery(
            f"SELECT {shown}.{label} FROM {clause} WHERE {given}.{label} = {_literal(value)}", "self-join"
        )

    def _links(self) -> list[tuple[Table, str, Table, str]]:
        """(child, its foreign-key column, parent, the column it references) for each foreign key
        from one table into another."""
        out = []
        for child in self.tables:
            for col, rt, rc in child.foreign_keys:
                parent = self.by_name.get(rt.lower())
                if parent and parent is not child and rc:
                    out.append((child, col, parent, rc))
        return out

    def _threshold(self, sql: str) -> object | None:
        """A value of a query's first column, ranked 2nd to 12th from the top: the rows above it
        are few, and at least one."""
        try:
            rows = run_query(self.conn, f"{sql} ORDER BY 1 DESC LIMIT 12", max_rows=12, time_budget_s=1.0).rows
        except QueryFailed:
            return None
        values = [r[0] for r in rows if isinstance(r[0], (int, float))]
        if len(values) < 2:
            return None
        value = values[self.rng.randrange(1, len(values))]
        if isinstance(value, float):  # a round number, and none that a float's last digit decides
            value = int(value) if abs(value) >= 10 else round(value, 2)
            if any(v != value and abs(v - value) < 1e-6 * max(1.0, abs(value)) for v in values):
                return None
        return value

    def _related(self) -> SampledQuery | None:
        """Rows of a table chosen by the rows that point to them through a foreign key: those with
        more than N (GROUP BY ... HAVING), those with none (NOT IN), and those with at least one
        that passes a filter (IN)."""
        links = self._links()
        if not links:
            return None
        child, col, parent, rc = self.rng.choice(links)
        label = self._label(parent)
        if not _is_text(label.type):
            return None
        p, c, name = _display_name(parent.name), _display_name(child.name), _col(parent, label)
        key, fk = f"{p}.{_display_name(rc)}", f"{c}.{_display_name(col)}"
        numbers = self._columns(child, _is_number)
        kind = self.rng.choice(["having", "none", "some"])
        if kind == "having":
            measure = (
                f"avg({_col(child, self.rng.choice(numbers))})" if numbers and self.rng.random() < 0.4 else "count(*)"
            )
            grouped = f"FROM {p} JOIN {c} ON {fk} = {key} GROUP BY {key}"
            threshold = self._threshold(f"SELECT {measure} {grouped}")
            if threshold is None:
                return None
            return SampledQuery(f"SELECT {name} {grouped} HAVING {measure} > {_literal(threshold)}", kind)
        if kind == "none":
            what = self.rng.choice([name, "count(*)"])
            return SampledQuery(
                f"SELECT {what} FROM {p} WHERE {key} NOT IN (SELECT {fk} FROM {c} WHERE {fk} IS NOT NULL)", kind
            )
        texts = self._columns(child, lambda x: _is_text(x.type))
        if numbers and (not texts or self.rng.random() < 0.5):
            number = _col(child, self.rng.choice(numbers))
            threshold = self._threshold(f"SELECT {number} FROM {c}")
            where = None if threshold is None else f"{number} > {_literal(threshold)}"
        elif texts:
            text = self.rng.choice(texts)
            value = self._value(child, text)
            where = None if value is None else f"{_col(child, text)} = {_literal(value)}"
        else:
            where = None
        if where is None:
            return None
        return SampledQuery(f"SELECT {name} FROM {p} WHERE {key} IN (SELECT {fk} FROM {c} WHERE {where})", kind)

    def candidates(self) -> Iterator[SampledQuery]:
        while True:
            draw = self.rng.random()
            if draw < 0.05:
                query = self._self_joined()
            elif draw < 0.2:
                query = self._related()
            elif draw < 0.65:
                query = self._joined()
            else:
                query = self._one_table()
            if query is not None:
                yield query


def sample_queries(
    conn: sqlite3.Connection,
    tables: list[Table],
    n: int,
    seed: int = 0,
    exclude: set[str] | None = None,
    on_kept: Callable[[], None] | None = None,
) -> list[SampledQuery]:
    """Up to n distinct queries that run and return 1 to MAX_RESULT_ROWS rows, none of which
    gives a result in `exclude` (the held-out references' result signatures) or a result
    another kept query gives. Reproducible from `seed`. `on_kept()` after each query kept:
    on a table of millions of rows each candidate is a scan, and the build takes minutes."""
    sampler = QuerySampler(conn, tables, seed)
    if not sampler.tables:
        return []
    kept: list[SampledQuery] = []
    seen = set(exclude or ())
    tries = 0
    for query in sampler.candidates():
        tries += 1
        if len(kept) >= n or tries > 40 * n + 100:
            break
        try:
            result = run_query(conn, query.sql, max_rows=MAX_RESULT_ROWS + 1, time_budget_s=1.0)
            if query.limit is not None and _tie_at_limit(conn, query):
                continue
        except QueryFailed:
            continue
        if not result.rows or len(result.rows) > MAX_RESULT_ROWS or all(v in (None, 0) for v in result.rows[0]):
            continue
        signature = result_signature(result)
        if signature not in seen:
            seen.add(signature)
            kept.append(query)
            if on_kept:
                on_kept()
    return kept


def reads_one_table(sql: str) -> bool:
    """Whether a query this module built reads a single table (no join, no subquery)."""
    return " JOIN " not in sql and sql.upper().count("SELECT ") == 1


def _tie_at_limit(conn: sqlite3.Connection, query: SampledQuery) -> bool:
    """Whether the row just past the LIMIT ties with the last one kept: then which rows
    the query returns is arbitrary, and no question has one right answer."""
    limit = query.limit or 0
    rows = run_query(conn, f"{query.base} LIMIT {limit + 1}", max_rows=limit + 1, time_budget_s=1.0).rows
    return len(rows) > limit and rows[limit - 1][-1] == rows[limit][-1]
