"""`llamarch sql`: ask a SQLite database in plain words; the query runs read-only."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .ui import echo_err, engine_options, model_options

HELP_TEXT = """  /schema   show the schema the model sees
  /sql      show the last query
  /help     show this help
  /exit     leave (or Ctrl-D)
Anything else is a question (start it with // to ask one that begins with /)."""


@click.command()
@click.argument("question", required=False)
@click.option(
    "--db", required=True, metavar="FILE.sqlite", help="The SQLite database; opened read-only, never modified."
)
@model_options
@click.option(
    "--from",
    "from_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="A `distill --check sql --out DIR` run: use its adapter (and its student, unless -m is given).",
)
@click.option("--show-sql/--no-show-sql", default=True, show_default=True, help="Print the query above the rows.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {question, sql, columns, rows, truncated, stats} as JSON (one line per question in the REPL).",
)
@click.option(
    "--rows",
    "max_rows",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Rows to show at most (the query's result is cut there).",
)
@click.option("--temperature", type=click.FloatRange(min=0), default=0.0, show_default=True, help="0 = greedy.")
@click.option(
    "--max-tokens", type=click.IntRange(min=16), default=256, show_default=True, help="Longest query in tokens."
)
@click.option("--seed", type=int, help="Random seed, for reproducible sampling.")
def sql(
    question: str | None,
    db: str,
    model: str | None,
    backend: str | None,
    from_dir: Path | None,
    show_sql: bool,
    as_json: bool,
    max_rows: int,
    temperature: float,
    max_tokens: int,
    seed: int | None,
    **engine: Any,
) -> None:
    """Answer QUESTION about an SQLite database with one query, run read-only.

    The model writes a query from the schema read from the database; the read-only
    guard runs it (a time budget, a row cap, no writes) and the rows print as a table.
    A query that fails is retried once, given SQLite's error. Without QUESTION a small
    REPL opens (/schema, /sql, /exit); every question and answer is stored like a chat
    turn (`llamarch logs list`).

    \b
    llamarch sql --db shop.sqlite "How many orders were placed in 2024?"
    llamarch sql --db shop.sqlite --from runs/shop "Which customers spent the most?"
    """
    from ..errors import LlamarchError
    from ..llm import LLM
    from ..sql.ask import Asker, EmptyQuestion, read_distill_run, schema_mismatch
    from ..sql.guard import open_readonly
    from ..sql.prompt import STUDENT_SCHEMA, STUDENT_VALUES
    from ..store import Store

    if from_dir is not None and engine.get("lora_path"):
        raise click.ClickException("give --adapter or --from, not both")
    if question is not None and not question.strip():
        raise EmptyQuestion()
    conn = open_readonly(db)  # a missing, non-database or locked file: one line, before the model loads
    schema_style, values = STUDENT_SCHEMA, STUDENT_VALUES  # the student's prompt in `distill --check sql`
    try:
        if from_dir is not None:
            run = read_distill_run(from_dir)
            engine["lora_path"] = str(run.adapter)
            chosen = model or run.student
            if model and run.student and model != run.student:
                echo_err(f"warning: the adapter in {from_dir} was trained for {run.student}, not {model}")
            echo_err(
                f"using the adapter {run.adapter} with {chosen or 'the default model'} "
                f"({'-m' if model else 'the student'} of the distill run {from_dir})"
            )
            model = chosen
            schema_style, values = run.schema_style, run.values
            warning = schema_mismatch(run, conn, db)
            if warning:
                echo_err(warning)
        interactive = question is None and sys.stdin.isatty()
        with Store() as store:  # opened first: a locked or damaged store fails before the model loads
            if interactive:
                echo_err(f"Loading {model or 'the default model'}…")
            with LLM(model, backend=backend, **engine_options(**engine)) as llm:
                asker = Asker(
                    llm,
                    conn,
                    schema_style=schema_style,
                    values=values,
                    max_rows=max_rows,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed,
                )
                session = _Session(asker, store, db, model, as_json, show_sql, engine.get("lora_path"))
                if question is not None:
                    answer = asker.ask(question)
                    session.show(answer)
                    session.remember(answer)
                    if not answer.ok:
                        raise LlamarchError(answer.error or "no answer")
                    return
                if interactive:
                    echo_err(
                        f"{llm.model_id} on {db}: ask a question; /schema shows what the model sees, "
                        "/help the commands, Ctrl-D quits."
                    )
                status = session.repl()
    finally:
        conn.close()
    if status:
        sys.exit(status)


class _Session:
    """Showing answers, storing them as chat turns, and the REPL."""

    def __init__(
        self,
        asker: Any,
        store: Any,
        db: str,
        model: str | None,
        as_json: bool,
        show_sql: bool,
        adapter: str | None = None,
    ):
        from rich.console import Console

        self.asker = asker
        self.store = store
        self.db = db
        self.model = model
        self.as_json = as_json
        self.show_sql = show_sql
        self.adapter = adapter
        self.console = Console(highlight=False, soft_wrap=False)
        if not self.console.is_terminal:
            self.console.width = 200
        self.cid: int | None = None
        self.last_sql: str | None = None

    # --- output ---------------------------------------------------------------------------

    def show(self, answer: Any) -> None:
        """The answer on stdout (the query, then the rows); why there is none is for the caller."""
        self.last_sql = answer.sql or self.last_sql
        if answer.ok and answer.retried:
            echo_err(f"the first query failed ({answer.attempts[0].error}); the model's corrected query ran")
        if self.as_json:
            if answer.ok:
                click.echo(json.dumps(answer.to_json(), ensure_ascii=False, default=str))
            return
        if not answer.ok:
            return
        if self.show_sql:
            self.print_sql(answer.sql)
        self.print_rows(answer.result)

    def print_sql(self, sql: str) -> None:
        if self.console.is_terminal:
            from rich.syntax import Syntax

            self.console.print(Syntax(sql, "sql", theme="ansi_dark", word_wrap=True, background_color="default"))
        else:
            click.echo(sql)

    def print_rows(self, result: Any) -> None:
        from rich.table import Table
        from rich.text import Text

        from ..sql.ask import rows_text

        if result.columns and result.rows:
            table = Table(header_style="bold", show_lines=False)
            for name in result.columns:
                table.add_column(Text(str(name)), overflow="fold")
            for row in result.rows:
                table.add_row(*(_cell(v) for v in row))
            self.console.print(table)
        self.console.print(Text(rows_text(result) if result.rows else "no rows", style="dim"))

    # --- the store ------------------------------------------------------------------------

    def remember(self, answer: Any) -> None:
        """Store the question and the answer like a chat turn, with the query and its row count."""
        from ..backends import Stats
        from ..chat import Conversations, StoredMessage
        from ..errors import LlamarchError
        from ..sql.prompt import SYSTEM, as_answer
        from .chat import _model_spec

        engine = [a.stats for a in answer.attempts if a.stats]
        base = dict(engine[-1]) if engine else Stats(0, 0, 0.0, 0.0, 0.0, 0.0, "stop").to_dict()
        summary = answer.stats()
        stats = {
            **base,
            "sql": answer.sql,
            "rows": summary["rows"],
            "truncated": summary["truncated"],
            "attempts": summary["attempts"],
            "generation_s": summary["generation_s"],
            "database": str(self.db),
            **({"adapter": self.adapter} if self.adapter else {}),
            **({"error": answer.error, "errors": summary["errors"]} if answer.error else {}),
        }
        content = (as_answer(answer.sql) + "\n" if answer.sql else "") + answer.summary()
        options = {k: v for k, v in self.asker.options.items() if v is not None}
        llm = self.asker.llm
        try:
            conversations = Conversations(self.store)
            if self.cid is None:
                self.cid = conversations.create(
                    _model_spec(self.model, llm.model_id), llm.backend_name, SYSTEM, options
                )
            conversations.append(
                self.cid,
                [
                    StoredMessage("user", answer.question),
                    StoredMessage(
                        "assistant",
                        content,
                        cancelled=answer.cancelled,
                        model=llm.model_id,
                        options=options,
                        stats=stats,
                    ),
                ],
            )
        except LlamarchError as e:
            echo_err(f"this answer was not stored: {e}")

    # --- the REPL -------------------------------------------------------------------------

    def repl(self) -> int:
        import threading

        from .. import paths
        from ..chat.commands import message_text, parse
        from ..chat.repl import LineReader, sigint_cancels
        from ..errors import LlamarchError

        interactive = sys.stdin.isatty()
        prompt_out = sys.stdout if sys.stdout.isatty() else sys.stderr
        reader = LineReader(sys.stdin, interactive, prompt_out, paths.user_dir() / "sql_history")
        try:
            while True:
                line = reader.read()
                if line is None:
                    break
                if not line.strip():
                    continue
                command = parse(line.strip())
                if command is not None:
                    name, _ = command
                    if name in ("exit", "quit", "q"):
                        break
                    if name == "schema":
                        click.echo(self.asker.schema)
                    elif name == "sql":
                        click.echo(self.last_sql or "no query yet")
                    elif name in ("help", "?"):
                        click.echo(HELP_TEXT)
                    else:
                        echo_err(f"Error: unknown command /{name}: the commands are /schema, /sql, /help, /exit")
                    continue
                cancel = threading.Event()
                try:
                    with sigint_cancels(cancel):
                        answer = self.asker.ask(message_text(line.strip()), cancel=cancel)
                except LlamarchError as e:
                    echo_err(f"Error: {e}")
                    continue
                self.show(answer)
                if not answer.ok:
                    echo_err(f"Error: {answer.error}")
                self.remember(answer)
        except KeyboardInterrupt:  # Ctrl-C at the prompt: leave quietly
            pass
        if interactive:
            echo_err("")
        return 0


def _cell(value: Any) -> Any:
    from rich.text import Text

    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, bytes):
        return Text(f"<{len(value)} bytes>", style="dim")
    return Text(str(value))
