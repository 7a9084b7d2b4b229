"""Comparing query results the way a text-to-SQL checker does: by the rows, not the SQL."""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections import Counter

from .guard import QueryResult

MAX_PERMUTED_COLUMNS = 6
_ORDER_BY = re.compile(r"\bORDER\s+BY\b", re.IGNORECASE)


def normalize_value(v: object) -> object:
    """A value as compared: 1 == 1.0, floats to 4 decimals; str, bytes and None as they are."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return v
        r = round(v, 4)
        return int(r) if r.is_integer() else r
    return v


def _rows(result: QueryResult) -> list[tuple]:
    return [tuple(normalize_value(v) for v in row) for row in result.rows]


def result_signature(result: QueryResult) -> str:
    """A sha256 of the rows as a multiset of normalized rows: order and column names ignored."""
    lines = sorted(repr(row) for row in _rows(result))
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()


def _same(a: list[tuple], b: list[tuple], ordered: bool) -> bool:
    return a == b if ordered else Counter(a) == Counter(b)


def results_match(predicted: QueryResult, reference: QueryResult, ordered: bool) -> bool:
    """Whether the predicted rows are the reference rows (as a multiset, or in order when ordered).

    Column names are ignored; with at most 6 columns a different column order is accepted too.
    A truncated result never matches.
    """
    if predicted.truncated or reference.truncated:
        return False
    width = len(reference.columns)
    if len(predicted.columns) != width or len(predicted.rows) != len(reference.rows):
        return False
    pred, ref = _rows(predicted), _rows(reference)
    if _same(pred, ref, ordered):
        return True
    if width < 2 or width > MAX_PERMUTED_COLUMNS:
        return False
    pred_cols = [[row[i] for row in pred] for i in range(width)]
    ref_cols = [[row[j] for row in ref] for j in range(width)]
    fits = [[_same(pred_cols[i], ref_cols[j], ordered) for j in range(width)] for i in range(width)]
    for perm in itertools.permutations(range(width)):  # perm[j]: the predicted column for ref column j
        if all(fits[perm[j]][j] for j in range(width)):
            if _same([tuple(row[i] for i in perm) for row in pred], ref, ordered):
                return True
    return False


def blank_out(sql: str) -> str:
    """The SQL with string literals, quoted names and comments replaced by as many spaces."""
    out, i, n = [], 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`[":
            close = "]" if ch == "[" else ch
            j = i + 1
            while j < n:
                if sql[j] == close:
                    if close != "]" and j + 1 < n and sql[j + 1] == close:
                        j += 2  # a doubled quote inside the literal
                        continue
                    break
                j += 1
            out.append(" " * (min(j + 1, n) - i))
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(" " * (j - i))
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def top_level(sql: str) -> str:
    """The SQL outside parentheses, with literals and comments blanked out."""
    out, depth = [], 0
    for ch in blank_out(sql):
        if ch == "(":
            depth += 1
            out.append(" ")
        elif ch == ")":
            depth = max(0, depth - 1)
            out.append(" ")
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def has_order_by(sql: str) -> bool:
    """Whether the outermost query has ORDER BY (not one in a subquery, a window, a literal)."""
    return bool(_ORDER_BY.search(top_level(sql)))


def normalize_question(text: str) -> str:
    """Lowercase words separated by single spaces, punctuation gone: for overlap checks."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())
