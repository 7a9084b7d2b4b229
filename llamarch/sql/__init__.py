"""Text-to-SQL helpers around a read-only guard: model-written SQL runs only through `run_query`
on a connection from `open_readonly`, and the user's database is never modified."""

from __future__ import annotations

from .extract import extract_sql
from .guard import (
    DEFAULT_MAX_ROWS,
    DEFAULT_TIME_BUDGET_S,
    DatabaseError,
    QueryFailed,
    QueryResult,
    open_readonly,
    run_query,
)
from .match import has_order_by, normalize_question, normalize_value, result_signature, results_match
from .questions import Question, load_questions
from .schema import (
    Column,
    Table,
    compact_schema,
    create_statements,
    ddl,
    describe,
    distinct_values,
    read_tables,
    sample_rows,
)

__all__ = [
    "DEFAULT_MAX_ROWS",
    "DEFAULT_TIME_BUDGET_S",
    "Column",
    "DatabaseError",
    "QueryFailed",
    "QueryResult",
    "Question",
    "Table",
    "compact_schema",
    "create_statements",
    "ddl",
    "describe",
    "distinct_values",
    "extract_sql",
    "has_order_by",
    "load_questions",
    "normalize_question",
    "normalize_value",
    "open_readonly",
    "read_tables",
    "result_signature",
    "results_match",
    "run_query",
    "sample_rows",
]
