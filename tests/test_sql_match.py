"""Result comparison, ORDER BY detection, query extraction and question normalization."""

from __future__ import annotations

import pytest

from llamarch.sql import (
    QueryResult,
    extract_sql,
    has_order_by,
    normalize_question,
    normalize_value,
    result_signature,
    results_match,
)


def result(rows, columns=None, truncated=False) -> QueryResult:
    rows = tuple(tuple(r) for r in rows)
    width = len(rows[0]) if rows else 1
    return QueryResult(tuple(columns or (f"c{i}" for i in range(width))), rows, truncated, 0.01)


def test_normalize_value() -> None:
    assert normalize_value(1.0) == 1 and isinstance(normalize_value(1.0), int)
    assert normalize_value(0.1 + 0.2) == 0.3
    assert normalize_value(2.123456) == 2.1235
    assert normalize_value(-0.0) == 0
    assert normalize_value("1") == "1" and normalize_value(b"\x00") == b"\x00" and normalize_value(None) is None
    assert normalize_value(float("inf")) == float("inf")


def test_signature_ignores_row_order_and_column_names() -> None:
    a = result([(1, "Rock"), (2, "Jazz"), (2, "Jazz")], ["id", "name"])
    b = result([(2, "Jazz"), (1.0, "Rock"), (2.00001, "Jazz")], ["x", "y"])
    assert result_signature(a) == result_signature(b)
    assert result_signature(a) != result_signature(result([(1, "Rock"), (2, "Jazz")]))
    assert result_signature(a) != result_signature(result([(1, "Rock"), (2, "jazz"), (2, "Jazz")]))
    assert result_signature(result([("1",)])) != result_signature(result([(1,)]))
    assert len(result_signature(a)) == 64


def test_results_match_unordered_and_ordered() -> None:
    ref = result([(1, "a"), (2, "b"), (3, "c")])
    shuffled = result([(3, "c"), (1.0, "a"), (2, "b")])
    assert results_match(shuffled, ref, ordered=False)
    assert not results_match(shuffled, ref, ordered=True)
    assert results_match(result([(1, "a"), (2.0, "b"), (3, "c")]), ref, ordered=True)
    assert not results_match(result([(1, "a"), (2, "b")]), ref, ordered=False)
    assert not results_match(
        result([(1, "a"), (1, "a"), (2, "b")]), result([(1, "a"), (2, "b"), (2, "b")]), ordered=False
    )
    assert not results_match(result([(1, "a", 0), (2, "b", 0), (3, "c", 0)]), ref, ordered=False)


def test_results_match_permuted_columns() -> None:
    ref = result([(1, "a", 9.5), (2, "b", 8.0)], ["id", "name", "score"])
    permuted = result([("b", 8, 2), ("a", 9.5, 1)], ["name", "score", "id"])
    assert results_match(permuted, ref, ordered=False)
    assert not results_match(permuted, ref, ordered=True)
    assert results_match(result([("a", 9.5, 1), ("b", 8, 2)]), ref, ordered=True)
    # Columns that match one by one but not as rows: no permutation makes these rows.
    assert not results_match(result([(1, "b"), (2, "a")]), result([(1, "a"), (2, "b")]), ordered=False)
    wide = [tuple(range(7)), tuple(range(1, 8))]
    assert results_match(result(wide), result(wide), ordered=True)
    assert not results_match(result([r[::-1] for r in wide]), result(wide), ordered=False)


def test_truncated_never_matches() -> None:
    rows = [(1,), (2,)]
    assert not results_match(result(rows, truncated=True), result(rows), ordered=False)
    assert not results_match(result(rows), result(rows, truncated=True), ordered=False)


def test_empty_results() -> None:
    empty = QueryResult(("a",), (), False, 0.0)
    assert results_match(empty, empty, ordered=True)
    assert not results_match(QueryResult(("a", "b"), (), False, 0.0), empty, ordered=False)


@pytest.mark.parametrize(
    "sql,expected",
    [
        ("SELECT * FROM t ORDER BY a", True),
        ("select * from t order\n  by a desc limit 3", True),
        ("SELECT * FROM t", False),
        ("SELECT * FROM (SELECT * FROM t ORDER BY a) LIMIT 3", False),
        ("SELECT a FROM t WHERE b IN (SELECT b FROM u ORDER BY b LIMIT 1)", False),
        ("SELECT * FROM t WHERE name = 'ORDER BY x'", False),
        ('SELECT "order by" FROM t', False),
        ("SELECT * FROM t -- ORDER BY a", False),
        ("SELECT * FROM t /* ORDER BY a */", False),
        ("SELECT a, row_number() OVER (ORDER BY a) FROM t", False),
        ("SELECT group_concat(a ORDER BY a) FROM t", False),
        ("WITH x AS (SELECT * FROM t ORDER BY a) SELECT * FROM x", False),
        ("WITH x AS (SELECT * FROM t) SELECT * FROM x ORDER BY 1", True),
        ("SELECT a FROM t UNION SELECT a FROM u ORDER BY a", True),
        ("SELECT 'it''s' AS s FROM t ORDER BY s", True),
        ("SELECT * FROM t ORDERBY", False),
    ],
)
def test_has_order_by(sql: str, expected: bool) -> None:
    assert has_order_by(sql) is expected


REPLIES = [
    ("```sql\nSELECT Name FROM Artist;\n```", "SELECT Name FROM Artist"),
    (
        "Here is the query:\n\n```sql\nSELECT count(*)\nFROM Track\nWHERE GenreId = 1;\n```\n\n"
        "This counts the rock tracks.",
        "SELECT count(*)\nFROM Track\nWHERE GenreId = 1",
    ),
    ("SELECT * FROM Album WHERE ArtistId = 1", "SELECT * FROM Album WHERE ArtistId = 1"),
    (
        "To answer this, we join the tables.\n\nSELECT a.Title, b.Name\nFROM Album a\n"
        "JOIN Artist b ON a.ArtistId = b.ArtistId;\n\nThis returns each album with its artist.",
        "SELECT a.Title, b.Name\nFROM Album a\nJOIN Artist b ON a.ArtistId = b.ArtistId",
    ),
    (
        "```sql\nSELECT Name, Milliseconds\nFROM Track\nORDER BY Milliseconds DESC\nLIM",
        "SELECT Name, Milliseconds\nFROM Track\nORDER BY Milliseconds DESC\nLIM",
    ),
    ("select name from genre where name like '%rock%';", "select name from genre where name like '%rock%'"),
    (
        "```\nWITH t AS (SELECT GenreId, count(*) AS n FROM Track GROUP BY GenreId)\nSELECT max(n) FROM t\n```",
        "WITH t AS (SELECT GenreId, count(*) AS n FROM Track GROUP BY GenreId)\nSELECT max(n) FROM t",
    ),
    ("I don't know which table holds that information.", None),
    ("", None),
    ("```python\nprint('hi')\n```", None),
    ("```SQL\nSELECT 'a;b' AS x; SELECT 2;\n```", "SELECT 'a;b' AS x"),
    ("SELECT Title\nFROM Album\nThis query lists all the album titles.", "SELECT Title\nFROM Album"),
    (
        "SELECT Title\nFROM Album\n\nWHERE AlbumId < 5\n\nExplanation: filters albums.",
        "SELECT Title\nFROM Album\n\nWHERE AlbumId < 5",
    ),
    ("With this query you get the answer:\n```sql\nSELECT 1\n```", "SELECT 1"),
    ("You can run `SELECT count(*) FROM Invoice` to get it.", "SELECT count(*) FROM Invoice"),
    (
        "```sqlite\n-- the longest track\nSELECT Name FROM Track ORDER BY Milliseconds DESC LIMIT 1\n```",
        "-- the longest track\nSELECT Name FROM Track ORDER BY Milliseconds DESC LIMIT 1",
    ),
    ("```text\nfirst\n```\n```\nSELECT 2\n```", "SELECT 2"),
]


@pytest.mark.parametrize("reply,expected", REPLIES)
def test_extract_sql(reply: str, expected: str | None) -> None:
    assert extract_sql(reply) == expected


def test_normalize_question() -> None:
    assert (
        normalize_question("  How many   TRACKS are in the 'Rock' genre?\n") == "how many tracks are in the rock genre"
    )
    assert normalize_question("Which artist's albums...") == normalize_question("which artist s albums")
    assert normalize_question("") == ""
