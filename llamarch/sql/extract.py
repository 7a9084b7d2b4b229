"""Finding the SQL query in a model's reply: fenced, bare, with prose around it, or cut short."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .match import blank_out

_QUERY_START = re.compile(r"\s*(SELECT|WITH)\b", re.IGNORECASE)
_CTE = re.compile(r"\s*WITH\s+(RECURSIVE\s+)?\S+?(\s*\([^)]*\))?\s+AS\s*(NOT\s+)?(MATERIALIZED\s*)?\(", re.IGNORECASE)
_INLINE = re.compile(r"`((?:SELECT|WITH)\b[^`]+)`", re.IGNORECASE)
_LEADING_COMMENTS = re.compile(r"\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*", re.DOTALL)
_KEYWORDS = frozenset(
    """select with from where join inner left right cross full outer natural on using
and or not group order having limit offset union intersect except as case when then else end in
exists between like glob is null distinct all by asc desc values cast over partition window
recursive""".split()
)
_PROSE_START = re.compile(r"[A-Z][a-z']*(\s|$)")
_UPPER_KEYWORD = re.compile(r"\b(?:FROM|WHERE|JOIN|ON|AS|AND|OR|GROUP|ORDER|BY|LIMIT|SELECT|HAVING)\b")


def extract_sql(reply: str) -> str | None:
    """The first query in a reply, without a trailing `;`; None when there is none."""
    if not reply or not reply.strip():
        return None
    blocks = list(_fenced_blocks(reply))
    tagged = [body for lang, body in blocks if "sql" in lang]
    untagged = [body for lang, body in blocks if "sql" not in lang and _starts_query(body)]
    for body in tagged + untagged:
        sql = _first_statement(body)
        if sql:
            return sql
    sql = _bare_query(reply)
    if sql:
        return sql
    for m in _INLINE.finditer(reply):
        sql = _first_statement(m.group(1))
        if sql and _starts_query(sql):
            return sql
    return None


def _fenced_blocks(reply: str) -> Iterator[tuple[str, str]]:
    """(language, body) of each ``` block; the last one may be cut off (no closing fence)."""
    for segment in reply.split("```")[1::2]:
        m = re.match(r"[ \t]*([\w+.#-]*)", segment)
        lang = m.group(1) if m else ""
        if lang.lower() in ("select", "with"):
            yield "", segment
        else:
            yield lang.lower(), segment[m.end() :] if m else segment


def _starts_query(text: str) -> bool:
    text = text[_LEADING_COMMENTS.match(text).end() :]
    if not _QUERY_START.match(text):
        return False
    return not re.match(r"\s*WITH\b", text, re.IGNORECASE) or bool(_CTE.match(text))


def _first_statement(text: str) -> str | None:
    """The text up to its first `;` outside literals and comments, stripped; None when empty."""
    cut = blank_out(text).find(";")
    sql = (text if cut < 0 else text[:cut]).strip()
    lines = [line.rstrip() for line in sql.splitlines()]
    sql = "\n".join(lines).strip()
    return sql if sql and blank_out(sql).strip() else None


def _bare_query(reply: str) -> str | None:
    """A query written without a fence: from a line starting SELECT/WITH to `;`, prose or the end."""
    lines = reply.splitlines()
    start = next((i for i, line in enumerate(lines) if _starts_query("\n".join(lines[i : i + 8]))), None)
    if start is None:
        return None
    taken = [lines[start]]
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            break
        if not line.strip():
            following = next((x for x in lines[i + 1 :] if x.strip()), None)
            if following is None or not _continues_sql(following):
                break
        elif _is_prose(line):
            break
        taken.append(line)
        i += 1
    return _first_statement("\n".join(taken))


def _first_word(line: str) -> str:
    m = re.match(r"\s*([A-Za-z_]+)", line)
    return m.group(1).lower() if m else ""


def _continues_sql(line: str) -> bool:
    """A line after a blank line that still belongs to the query."""
    stripped = line.lstrip()
    return line[:1] in (" ", "\t") or stripped[:1] in "(),*'\"`[0123456789" or _first_word(line) in _KEYWORDS


def _is_prose(line: str) -> bool:
    """A line of explanation right after the query: `This query lists ...`, `Explanation:`."""
    if line[:1] in (" ", "\t") or _first_word(line) in _KEYWORDS:
        return False
    if not _PROSE_START.match(line) or "=" in line or _UPPER_KEYWORD.search(line):
        return False
    stripped = line.rstrip()
    return stripped.endswith((".", ":", "!", "?")) or len(stripped.split()) >= 4
