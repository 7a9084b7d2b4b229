"""Checkers: whether an answer is right, found by running it.

A checker is any callable `(task, answer) -> Check`. It says passed, failed or unknown,
with a one-line reason, and gives a signature of what the answer *does* (for SQL a hash of
its result rows), so that several answers to one task can be grouped and voted on.

    checker = get_checker("sql", db="music.sqlite")
    checker(Task("How many tracks are there?"), "```sql\\nSELECT count(*) FROM Track\\n```")
    # Check(status='unknown', reason='1 row', signature='9f2c...')

Two are built in, `sql` (through the read-only guard) and `python` (in the sandbox).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..errors import LlamarchError

PASSED, FAILED, UNKNOWN = "passed", "failed", "unknown"


@dataclass(frozen=True)
class Task:
    """What an answer is checked against: the question, and a reference answer if there is one."""

    question: str
    reference: str | None = None
    source: str = ""
    tests: str | None = None  # Python: test code run after the answer (asserts)


@dataclass(frozen=True)
class Check:
    """A checker's verdict on one answer."""

    status: str  # passed | failed | unknown (it ran, but nothing says whether it is right)
    reason: str = ""
    signature: str | None = None  # what the answer does; None when it did not run
    answer: str = ""  # the part of the reply that ran (the query, the code)
    empty: bool = False  # it ran and found nothing (no rows, or one row of zeros/NULLs): not voted for

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def executed(self) -> bool:
        return self.signature is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "signature": self.signature,
            "answer": self.answer,
            "empty": self.empty,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        return cls(
            data["status"],
            data.get("reason", ""),
            data.get("signature"),
            data.get("answer", ""),
            bool(data.get("empty")),
        )


class Checker(Protocol):
    def __call__(self, task: Task, answer: str) -> Check: ...


class SQLChecker:
    """Runs the query in an answer on a SQLite database, read-only, under a time and row budget.

    With a reference query the result must equal the reference's (ordered when the
    reference has ORDER BY); without one, a query that runs is `unknown`, with its
    result's signature. A result cut at the row cap fails (nothing sensible returns that much).
    A query checked without a reference is run once: its check is kept (the last
    `CHECKS_KEPT` queries), since a vote and the settling before it check the same samples.
    """

    name = "sql"
    CHECKS_KEPT = 4096

    def __init__(self, db: str | os.PathLike[str], time_budget_s: float | None = None, max_rows: int | None = None):
        from ..sql import guard

        self.db = str(db)
        self.conn = guard.open_readonly(db)
        self.limits = {
            "time_budget_s": time_budget_s or guard.DEFAULT_TIME_BUDGET_S,
            "max_rows": max_rows or guard.DEFAULT_MAX_ROWS,
        }
        self._references: dict[str, Any] = {}
        self._unreferenced: OrderedDict[str, Check] = OrderedDict()

    def run(self, sql: str) -> Any:
        """The QueryResult of `sql` (raises QueryFailed)."""
        from ..sql.guard import run_query

        return run_query(self.conn, sql, **self.limits)

    def reference_result(self, sql: str) -> Any:
        if sql not in self._references:
            self._references[sql] = self.run(sql)
        return self._references[sql]

    def __call__(self, task: Task, answer: str) -> Check:
        from ..sql.extract import extract_sql
        from ..sql.match import has_order_by, results_match

        sql = extract_sql(answer)
        if not sql:
            return Check(FAILED, "no SQL query in the answer")
        if task.reference is None:
            return self._kept_check(sql)
        result, ran = self._execute(sql)
        if result is None:
            return ran
        reference = self.reference_result(task.reference)
        if results_match(result, reference, ordered=has_order_by(task.reference)):
            return replace(ran, status=PASSED, reason=f"{ran.reason}, as the reference")
        wrong = f"{ran.reason}, not the reference's result ({len(reference.rows)} rows)"
        return replace(ran, status=FAILED, reason=wrong)

    def _kept_check(self, sql: str) -> Check:
        """The check of `sql` without a reference, run once while it is among those kept."""
        if sql in self._unreferenced:
            self._unreferenced.move_to_end(sql)
            return self._unreferenced[sql]
        check = self._execute(sql)[1]
        self._unreferenced[sql] = check
        if len(self._unreferenced) > self.CHECKS_KEPT:
            self._unreferenced.popitem(last=False)
        return check

    def _execute(self, sql: str) -> tuple[Any, Check]:
        """(result, `unknown` check with its signature), or (None, `failed` check) when it does not run."""
        from ..sql.guard import QueryFailed
        from ..sql.match import result_signature

        try:
            result = self.run(sql)
        except QueryFailed as e:
            return None, Check(FAILED, e.reason, answer=sql)
        if result.truncated:
            return None, Check(FAILED, f"returned more than {self.limits['max_rows']} rows", answer=sql)
        rows = f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}"
        return result, Check(UNKNOWN, rows, result_signature(result), sql, _nothing_found(result.rows))

    def close(self) -> None:
        self.conn.close()


def _nothing_found(rows: Any) -> bool:
    """No rows, or one row of zeros and NULLs (a count or sum over nothing): weak evidence
    that the question was understood, so such a result is not voted for."""
    if not rows:
        return True
    return len(rows) == 1 and all(v is None or v == 0 for v in rows[0])


@dataclass
class PythonChecker:
    """Runs the code in an answer with the task's tests (or its docstring examples) in the sandbox."""

    timeout_s: float = 10.0
    memory_mb: int = 1024
    name: str = field(default="python", init=False)

    def __call__(self, task: Task, answer: str) -> Check:
        from .extract import extract_code
        from .sandbox import Limits, run_program

        code = extract_code(answer).code
        if not code.strip():
            return Check(FAILED, "no Python code in the answer")
        tests = task.tests or _doctest_runner(code)
        if not tests:
            return Check(UNKNOWN, "no tests and no docstring examples to run", None, code)
        outcome = run_program(f"{code}\n\n{tests}\n", Limits(timeout_s=self.timeout_s, memory_mb=self.memory_mb))
        signature = hashlib.sha256(f"{outcome.status}\x1f{outcome.detail}".encode()).hexdigest()
        reason = outcome.status if outcome.passed else f"{outcome.status}: {outcome.detail}".splitlines()[0][:200]
        return Check(PASSED if outcome.passed else FAILED, reason, signature, code)


def _doctest_runner(code: str) -> str | None:
    """Asserts from the `>>> expression` / expected-output pairs in the docstrings of `code`.

    (The doctest module itself imports pdb, which the sandbox's guard refuses.)
    """
    checks = []
    lines = code.splitlines()
    for n, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith(">>> "):
            continue
        expected = lines[n + 1].strip() if n + 1 < len(lines) else ""
        if not expected or expected.startswith(">>>") or expected.startswith(('"""', "'''")):
            continue
        checks.append(f"assert repr({stripped[4:]}) == {expected!r}, {stripped[4:] + ' should be ' + expected!r}")
    return "\n".join(checks) or None


class _CallableChecker:
    """Any `(task, answer) -> Check | bool` callable, as a checker."""

    def __init__(self, fn: Callable[[Task, str], Check | bool]):
        self.fn = fn
        self.name = getattr(fn, "__name__", "custom")

    def __call__(self, task: Task, answer: str) -> Check:
        result = self.fn(task, answer)
        if isinstance(result, Check):
            return result
        ok = bool(result)
        return Check(PASSED if ok else FAILED, "the check passed" if ok else "the check failed", str(ok))


CHECKERS: dict[str, Callable[..., Checker]] = {"sql": SQLChecker, "python": PythonChecker}


def get_checker(check: str | Checker | Callable[[Task, str], Check | bool], **options: Any) -> Checker:
    """A built-in checker by name (with its options, e.g. db=...), or any callable as one."""
    if isinstance(check, str):
        if check not in CHECKERS:
            raise LlamarchError(f"unknown checker {check!r}: choose one of {', '.join(sorted(CHECKERS))}")
        if check == "sql" and not options.get("db"):
            raise LlamarchError("the sql checker needs a database: give --db FILE.sqlite")
        return CHECKERS[check](**options)
    if isinstance(check, (SQLChecker, PythonChecker, _CallableChecker)):
        return check
    if callable(check):
        return _CallableChecker(check)
    raise LlamarchError(f"a checker must be a name ({', '.join(sorted(CHECKERS))}) or a callable, not {check!r}")
