"""Ask a database in plain words: the model writes one query, the read-only guard runs it.

The prompt is `llamarch.sql.prompt`'s, the one `distill --check sql` trains the student
with and `eval sql` measures, so a distilled adapter sees exactly what it learned from.
A query that fails is retried once, the model given SQLite's error (`repair_messages`) and
what the schema says about it (`schema.error_hint`); a query the guard refuses (a write) is
not retried: the refusal is the answer. See `Asker.ask` for how the retry avoids running the
very query that failed again.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LlamarchError
from .extract import extract_sql
from .guard import DEFAULT_TIME_BUDGET_S, QueryFailed, QueryResult, open_readonly, run_query
from .prompt import STOPS, STUDENT_SCHEMA, STUDENT_VALUES, as_answer, normalize_sql, repair_messages, sql_messages
from .schema import Table, describe, error_hint, read_tables

DEFAULT_ROWS = 50
DEFAULT_MAX_TOKENS = 256
REFUSED = "not allowed"  # how the guard's refusals begin
RESAMPLES = 2  # replies sampled more when the retry repeats the failed query
RESAMPLE_TEMPERATURE = 0.7
RESAMPLE_SEED = 0  # their seed when the user gave none: a question is answered the same way each time
SAME_QUERY = "the same query as the one that failed (not run again)"
_WRITE_START = re.compile(
    r"^\s*(INSERT|UPDATE|DELETE|REPLACE|DROP|CREATE|ALTER|ATTACH|DETACH|VACUUM|PRAGMA|"
    r"REINDEX|ANALYZE|BEGIN|COMMIT)\b",
    re.IGNORECASE | re.MULTILINE,
)


class EmptyQuestion(LlamarchError):
    def __init__(self) -> None:
        super().__init__('empty question: ask something about the database, e.g. "How many customers are there?"')


@dataclass
class Attempt:
    """One reply of the model and what became of its query."""

    reply: str
    sql: str | None
    error: str | None = None  # None: the query ran
    stats: dict[str, Any] | None = None  # the engine's Stats of the reply


@dataclass
class Answer:
    question: str
    attempts: list[Attempt] = field(default_factory=list)
    result: QueryResult | None = None
    error: str | None = None  # one line: why there is no result
    refused: bool = False  # the guard refused the query (a write)
    no_sql: bool = False  # the model wrote no query
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def sql(self) -> str | None:
        """The query that ran, else the last one tried."""
        queries = [a.sql for a in self.attempts if a.sql]
        return queries[-1] if queries else None

    @property
    def retried(self) -> bool:
        return len(self.attempts) > 1

    def stats(self) -> dict[str, Any]:
        engine = [a.stats for a in self.attempts if a.stats]
        return {
            "attempts": len(self.attempts),
            "rows": len(self.result.rows) if self.result else 0,
            "truncated": bool(self.result and self.result.truncated),
            "prompt_tokens": sum(s["prompt_tokens"] for s in engine),
            "completion_tokens": sum(s["completion_tokens"] for s in engine),
            "generation_s": round(sum(s["total_s"] for s in engine), 3),
            "query_s": round(self.result.seconds, 4) if self.result else None,
            "total_s": round(self.seconds, 3),
            "errors": [{"sql": a.sql, "error": a.error} for a in self.attempts if a.error],  # queries that failed
        }

    def to_json(self) -> dict[str, Any]:
        """{question, sql, columns, rows, truncated, stats}: what `llamarch sql --json` prints."""
        r = self.result
        return {
            "question": self.question,
            "sql": self.sql,
            "columns": list(r.columns) if r else [],
            "rows": [[json_value(v) for v in row] for row in r.rows] if r else [],
            "truncated": bool(r and r.truncated),
            "stats": self.stats(),
            **({"error": self.error} if self.error else {}),
        }

    def summary(self) -> str:
        """The answer in one line, for the store and the REPL: `12 rows`, or why none."""
        if self.result is not None:
            return rows_text(self.result)
        return self.error or "no answer"


def json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def rows_text(result: QueryResult) -> str:
    n = len(result.rows)
    if result.truncated:
        return f"first {n} rows shown; the query returns more (--rows N shows more)"
    return f"{n} row{'s' if n != 1 else ''}"


def one_line(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def write_statement(reply: str) -> str | None:
    """A write written without a ```sql fence (`DELETE FROM customer;`), so that the guard
    refuses it with its reason instead of the reply counting as having no SQL."""
    m = _WRITE_START.search(reply or "")
    if m is None:
        return None
    lines = []
    for line in reply[m.start() :].splitlines():
        if not line.strip() or line.lstrip().startswith("```"):
            break
        lines.append(line)
    text = "\n".join(lines).strip()
    return text.split(";")[0].strip() or None


_STRING_LITERAL = re.compile(r"('(?:[^']|'')*')")


def query_key(sql: str) -> str:
    """A query as compared for sameness: no trailing semicolon, no comments, whitespace collapsed,
    no spaces around punctuation, and keywords and names lower-cased (SQLite's are
    case-insensitive); string literals are kept as written ('Rome' is not 'rome')."""
    parts = _STRING_LITERAL.split(normalize_sql(sql))
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a literal
            out.append(part)
            continue
        part = re.sub(r"--[^\n]*|/\*.*?\*/", " ", part, flags=re.DOTALL)
        flat = re.sub(r"\s+", " ", part.lower())
        out.append(re.sub(r"\s*([(),=<>!+*/%|-])\s*", r"\1", flat))
    return "".join(out).strip()


def same_query(a: str | None, b: str | None) -> bool:
    """True when two queries are the same once normalized (`query_key`), so that running the
    second would only fail the way the first did."""
    return a is not None and b is not None and query_key(a) == query_key(b)


Generate = Callable[[list[Any]], tuple[str, dict[str, Any] | None]]


class Asker:
    """Questions about one database, answered by one model: the schema is read once."""

    def __init__(
        self,
        llm: Any,
        conn: sqlite3.Connection,
        *,
        schema: str | None = None,
        schema_style: str = STUDENT_SCHEMA,
        values: bool = STUDENT_VALUES,
        max_rows: int = DEFAULT_ROWS,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = 0.0,
        seed: int | None = None,
        time_budget_s: float = DEFAULT_TIME_BUDGET_S,
    ):
        self.llm = llm
        self.conn = conn
        self.schema = describe(conn, style=schema_style, distinct=values) if schema is None else schema
        self.max_rows = max_rows
        self.time_budget_s = time_budget_s
        self.options = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
        self._tables: list[Table] | None = None

    def generate(
        self, messages: list[Any], cancel: threading.Event | None = None, **overrides: Any
    ) -> tuple[str, dict[str, Any] | None]:
        """The model's reply to `messages` and its stats (greedy at temperature 0);
        `overrides` (temperature, seed) replace the Asker's options for this reply."""
        from ..backends import GenerationOptions

        options = GenerationOptions.from_kwargs(**{**self.options, **overrides}, stop=list(STOPS), cancel=cancel)
        parts: list[str] = []
        stats = None
        for chunk in self.llm.stream(messages, options=options):
            parts.append(chunk.text)
            stats = chunk.stats or stats
        return "".join(parts), stats.to_dict() if stats is not None else None

    def run(self, sql: str) -> QueryResult:
        return run_query(self.conn, sql, time_budget_s=self.time_budget_s, max_rows=self.max_rows)

    def hint(self, reason: str, sql: str) -> str | None:
        """What the schema says about a failed query (`schema.error_hint`), the tables read once."""
        if self._tables is None:
            try:
                self._tables = read_tables(self.conn)
            except LlamarchError:
                self._tables = []
        return error_hint(self._tables, reason, sql)

    def _resample_options(self, n: int) -> dict[str, Any]:
        """The options of the n-th (1, 2, ...) reply sampled when the retry repeated the failed query."""
        seed = self.options["seed"] if self.options["seed"] is not None else RESAMPLE_SEED
        return {"temperature": max(RESAMPLE_TEMPERATURE, self.options["temperature"] or 0.0), "seed": seed + n}

    def ask(self, question: str, *, first_reply: str | None = None, cancel: threading.Event | None = None) -> Answer:
        """Answer one question. `first_reply` stands in for the model's first reply (a hook
        for tests and scripts: the retry, if its query fails, is the model's own).

        A query that fails gets one retry: the model is shown SQLite's error and, when the
        error names a column or table, what the schema has instead (`schema.error_hint`:
        "T2 is Album, which has no column Name. The tables with a column Name: Artist,
        Track."). The retry runs at most one more query. A greedy model often writes the
        failed query again word for word; running it would only fail again, so a retry
        whose query is the same once normalized (`same_query`) is not run: up to RESAMPLES
        (2) more replies are sampled at temperature 0.7 (seeded: --seed, else 0, so a
        question is answered the same way each time), and the first that differs runs.
        Each reply is an `Attempt`; one repeated every time fails the question with one line.
        """
        if not question or not question.strip():
            raise EmptyQuestion()
        t0 = time.perf_counter()
        answer = Answer(question.strip())
        messages = sql_messages(answer.question, self.schema)
        failed: Attempt | None = None  # the first query, once it has failed
        replies = 0  # replies to the repair request
        while True:
            if failed is None and first_reply is not None:
                reply, stats = first_reply, None
            elif failed is None:
                reply, stats = self.generate(messages, cancel)
            else:
                reply, stats = self.generate(messages, cancel, **(self._resample_options(replies) if replies else {}))
                replies += 1
            if stats is not None and stats.get("finish_reason") == "cancelled":
                answer.attempts.append(Attempt(reply, None, "cancelled", stats))
                answer.cancelled, answer.error = True, "cancelled"
                break
            sql = extract_sql(reply) or write_statement(reply)
            step = Attempt(reply, sql, stats=stats)
            answer.attempts.append(step)
            if not sql:
                step.error = "no SQL query in the answer"
                answer.no_sql = True
                answer.error = f"the model wrote no SQL query (it replied: {one_line(reply, 100) or 'nothing'})"
                break
            if failed is not None and same_query(sql, failed.sql):
                step.error = SAME_QUERY
                if replies <= RESAMPLES:
                    continue
                answer.error = (
                    f"the query failed twice (the model wrote the same query again, {replies} times); "
                    f"SQLite said: {failed.error} (the model's query: {one_line(sql, 100)})"
                )
                break
            try:
                answer.result = self.run(sql)
                answer.error = None
                break
            except QueryFailed as e:
                step.error = reason = e.reason
            if reason.startswith(REFUSED):
                answer.refused = True
                answer.error = f"refused by the read-only guard: {reason} (the model wrote: {one_line(sql, 100)})"
                break
            if failed is None:
                failed = step
                messages = repair_messages(messages, as_answer(sql), reason, hint=self.hint(reason, sql))
            else:
                answer.error = (
                    f"the query failed twice; SQLite said: {reason} (the model's query: {one_line(sql, 100)})"
                )
                break
        answer.seconds = time.perf_counter() - t0
        return answer


def ask(llm: Any, db: str | Path | sqlite3.Connection, question: str, **kwargs: Any) -> Answer:
    """One question about a database file (opened read-only) or an open guard connection."""
    first_reply = kwargs.pop("first_reply", None)
    if isinstance(db, sqlite3.Connection):
        return Asker(llm, db, **kwargs).ask(question, first_reply=first_reply)
    conn = open_readonly(db)
    try:
        return Asker(llm, conn, **kwargs).ask(question, first_reply=first_reply)
    finally:
        conn.close()


# --- a distill run's adapter ------------------------------------------------------------------


@dataclass(frozen=True)
class DistilledRun:
    """What `llamarch sql --from DIR` takes from a `distill --check sql` run directory."""

    dir: Path
    adapter: Path
    student: str | None
    database: str | None
    schema_style: str = STUDENT_SCHEMA  # the run's --student-schema
    values: bool = STUDENT_VALUES  # the run's --student-values
    trained_schema: str | None = None  # the schema text of the student's training prompts (train.jsonl)


def read_distill_run(run_dir: str | Path) -> DistilledRun:
    """DIR/report.json's adapter, student and database; one-line errors when it has none."""
    from .schema import SCHEMA_STYLES

    d = Path(run_dir)
    hint = "pass the --out directory of `llamarch distill --check sql`"
    if not d.is_dir():
        raise LlamarchError(f"--from {d}: no such directory: {hint}")
    report_file = d / "report.json"
    if not report_file.is_file():
        raise LlamarchError(f"--from {d}: no report.json there (the run has not finished?): {hint}")
    try:
        report = json.loads(report_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LlamarchError(f"--from {d}: cannot read report.json ({one_line(str(e), 80)}): {hint}") from None
    if not isinstance(report, dict):
        raise LlamarchError(f"--from {d}: report.json is not a distill report: {hint}")
    if not report.get("adapter"):
        raise LlamarchError(
            f"--from {d}: the run recorded no adapter (trained with --no-train?): train one, or pass --adapter A.gguf"
        )
    adapter = d / report["adapter"]
    if not adapter.is_file():
        raise LlamarchError(f"--from {d}: its adapter {adapter} is missing: rerun the distill to write it")
    student = report.get("student")
    database = report.get("database")
    settings = report.get("settings") if isinstance(report.get("settings"), dict) else {}
    # A run made before these settings were recorded prompted its student with the compact schema alone.
    style = settings.get("student_schema", "compact")
    style = style if style in SCHEMA_STYLES else STUDENT_SCHEMA
    values = settings.get("student_values") is True
    return DistilledRun(
        d,
        adapter,
        str(student) if student else None,
        str(database) if database else None,
        style,
        values,
        trained_schema(d / "train.jsonl"),
    )


def trained_schema(train_file: Path) -> str | None:
    """The schema text in the first training prompt of a distill run ("" for style none);
    None when the file is missing or its first row is not a text-to-SQL prompt."""
    from .prompt import INSTRUCTION

    try:
        with train_file.open(encoding="utf-8") as f:
            row = json.loads(f.readline())
        user = next(m["content"] for m in row["messages"] if m["role"] == "user")
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None
    if not isinstance(user, str) or INSTRUCTION not in user:
        return None
    context = user[: user.index(INSTRUCTION)]
    return context[len("Database:\n") :].strip() if context.startswith("Database:\n") else ""


def schema_mismatch(run: DistilledRun, conn: sqlite3.Connection, db: str | Path) -> str | None:
    """A one-line warning when the student would see another schema than it was trained on
    (None: the same). The training prompts' schema text decides when the run has them;
    else the schema of the run's database is compared with `db`'s."""
    from .guard import DatabaseError

    try:
        current = describe(conn, style=run.schema_style, distinct=run.values)
    except LlamarchError as e:
        return f"warning: cannot read the schema of {db} to compare it with the adapter's: {e}"
    if run.trained_schema is not None and run.trained_schema.strip() == current.strip():
        return None
    if run.database is None:
        return (
            f"warning: {run.dir}/report.json records no database: cannot check the adapter was trained on this schema"
        )
    recorded = Path(run.database)
    candidates = [recorded] if recorded.is_absolute() else [recorded, run.dir / recorded]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        return (
            f"warning: the adapter was distilled on {run.database}, which is not found here: "
            f"cannot check it has the schema of {db}"
        )
    if found.resolve() == Path(db).resolve():
        same = True
    else:
        try:
            other = open_readonly(found)
        except DatabaseError as e:
            return f"warning: cannot read the adapter's database to compare schemas: {e}"
        try:
            same = describe(other, style=run.schema_style, distinct=run.values) == current
        except LlamarchError as e:
            return f"warning: cannot compare the adapter's database schema with {db}'s: {e}"
        finally:
            other.close()
    if not same:
        return (
            f"warning: the adapter was distilled on {run.database}, whose schema differs from {db}'s: "
            "its answers may name tables or columns that are not there"
        )
    if run.trained_schema is None:
        return None
    return (
        f"warning: the adapter was trained on another description of this schema than llamarch writes now "
        f"(the prompt changed since the run): rerun `llamarch distill --check sql --out {run.dir}` to retrain it"
    )
