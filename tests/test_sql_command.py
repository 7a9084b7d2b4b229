"""`llamarch sql`: questions about a real SQLite database the test makes, answered by the real 0.5B.

Each model call is short (--max-tokens 96); the database's sha256 is checked unchanged after
every run. The bad-input checks load no model.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

MODEL = "qwen2.5-coder-0.5b"
FAST = ["-m", MODEL, "--max-tokens", "96", "--threads", "2", "--n-ctx", "2048"]


def make_shop(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(id), total REAL);
        INSERT INTO customer VALUES (1, 'Ann', 'Oslo'), (2, 'Bo', 'Rome'), (3, 'Cy', 'Oslo'), (4, 'Di', 'Lima');
        INSERT INTO orders VALUES (1, 1, 10.0), (2, 1, 5.5), (3, 2, 7.25), (4, 4, 3.0);
    """)
    conn.commit()
    conn.close()
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def llamarch(*args: str, stdin: str | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from llamarch.cli import main; main()", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stored_turns() -> list[tuple[str, dict | None, str]]:
    from llamarch.chat import Conversations
    from llamarch.store import Store

    with Store() as store:
        conversations = Conversations(store)
        return [
            (m.role, m.stats, m.content)
            for info in reversed(conversations.list())
            for m in conversations.messages(info.id)
        ]


def schema_text(db: Path, style: str = "compact", values: bool = False) -> str:
    from llamarch.sql.guard import open_readonly
    from llamarch.sql.schema import describe

    conn = open_readonly(db)
    try:
        return describe(conn, style=style, distinct=values)
    finally:
        conn.close()


@pytest.fixture()
def shop(tmp_path: Path) -> Path:
    return make_shop(tmp_path / "shop.sqlite")


# --- no model ---------------------------------------------------------------------------------


def test_bad_input_is_one_line_and_exit_1_before_any_model_loads(tmp_path, shop):
    before = sha256(shop)
    (tmp_path / "notdb.sqlite").write_text("hello, not a database\n")
    (tmp_path / "run").mkdir()
    cases = [
        (["--db", str(tmp_path / "missing.sqlite"), "q"], "database not found"),
        (["--db", str(tmp_path / "notdb.sqlite"), "q"], "is not an SQLite database"),
        (["--db", str(shop), "   "], "empty question"),
        (["--db", str(shop), "--from", str(tmp_path / "run"), "q"], "no report.json"),
        (["--db", str(shop), "--from", str(tmp_path / "run"), "--adapter", "a.gguf", "q"], "not both"),
    ]
    for args, expected in cases:
        r = llamarch("sql", *args, "-m", str(tmp_path / "no-such-model.gguf"))
        assert r.returncode == 1, (args, r.stderr)
        assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stdout == ""
    (tmp_path / "run" / "report.json").write_text(json.dumps({"database": str(shop), "adapter": None}))
    r = llamarch("sql", "--db", str(shop), "--from", str(tmp_path / "run"), "q")
    assert r.returncode == 1 and "recorded no adapter" in r.stderr and len(r.stderr.splitlines()) == 1
    # a database another connection is writing to
    writer = sqlite3.connect(shop, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("INSERT INTO customer VALUES (9, 'Zed', 'Nowhere')")
    try:
        r = llamarch("sql", "--db", str(shop), "q")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert r.returncode == 1 and "locked" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert sha256(shop) == before
    # `llamarch sql` is registered lazily: its module imports no engine and no rich
    code = (
        "import sys; import llamarch.cli.sql; "
        "print([m for m in ('llama_cpp', 'mlx', 'numpy', 'rich') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_second_failure_and_a_reply_without_sql_are_one_line_answers(shop):
    """Paths no real model takes on demand: a stub stands in for the model here only."""
    from llamarch.backends import Chunk, Stats
    from llamarch.sql.ask import Asker
    from llamarch.sql.guard import open_readonly

    class Scripted:
        def __init__(self, *replies: str):
            self.replies = list(replies)

        def stream(self, messages, options):
            yield Chunk(self.replies.pop(0), stats=Stats(10, 5, 1.0, 1.0, 0.1, 0.2, "stop"))

    conn = open_readonly(shop)
    try:
        twice = Asker(Scripted("SELECT nam FROM customer", "SELECT nme FROM customer"), conn).ask("Names?")
        assert not twice.ok and len(twice.attempts) == 2
        assert twice.error.startswith("the query failed twice; SQLite said: no such column: nme")
        none = Asker(Scripted("I cannot help with that."), conn).ask("Names?")
        assert none.no_sql and len(none.attempts) == 1 and "wrote no SQL" in none.error
        bare = Asker(Scripted("DELETE FROM customer;"), conn).ask("Remove everyone")
        assert bare.refused and "(DELETE)" in bare.error and len(bare.attempts) == 1
    finally:
        conn.close()


def test_from_compares_the_schema_the_student_was_trained_on(tmp_path, shop):
    from llamarch.sql.ask import read_distill_run, schema_mismatch
    from llamarch.sql.guard import open_readonly
    from llamarch.sql.prompt import sql_messages

    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter.gguf").write_bytes(b"GGUF")
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(shop.read_bytes())
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, label TEXT)")

    def distilled(database: Path, trained_on: str | None, style: str = "compact", values: bool | None = None):
        settings = {"student_schema": style, **({} if values is None else {"student_values": values})}
        (run / "report.json").write_text(
            json.dumps(
                {
                    "check": "sql",
                    "database": str(database),
                    "student": "s",
                    "adapter": "adapter/adapter.gguf",
                    "settings": settings,
                }
            )
        )
        (run / "train.jsonl").unlink(missing_ok=True)
        if trained_on is not None:
            row = {"messages": [*sql_messages("How many?", trained_on), {"role": "assistant", "content": "x"}]}
            (run / "train.jsonl").write_text(json.dumps(row) + "\n")
        found = read_distill_run(run)
        conn = open_readonly(shop)
        try:
            return found, schema_mismatch(found, conn, shop)
        finally:
            conn.close()

    run_info, warning = distilled(copy, schema_text(shop))
    assert warning is None and run_info.student == "s" and run_info.adapter == run / "adapter" / "adapter.gguf"
    assert distilled(copy, None)[1] is None  # no training prompts: the databases' schemas decide
    assert "schema differs" in distilled(other, None)[1]
    assert "schema differs" in distilled(other, schema_text(other))[1]
    assert "prompt changed since the run" in distilled(copy, "customer(id, name, city)\norders(id)")[1]
    found, warning = distilled(copy, schema_text(shop, "ddl"), style="ddl")
    assert found.schema_style == "ddl" and warning is None
    found, warning = distilled(copy, schema_text(shop, "create", values=True), style="create", values=True)
    assert found.schema_style == "create" and found.values and warning is None
    found, warning = distilled(copy, schema_text(shop, "create"), style="create")  # a run from before student_values
    assert not found.values and warning is None
    assert "prompt changed since the run" in distilled(copy, schema_text(shop, "create"), "create", values=True)[1]
    assert "not found here" in distilled(tmp_path / "gone.sqlite", None)[1]


# --- the real 0.5B -------------------------------------------------------------------------


def test_question_end_to_end_prints_the_query_and_the_rows_and_stores_the_turn(shop, qwen05_path):
    before = sha256(shop)
    r = llamarch("sql", "--db", str(shop), *FAST, "--rows", "2", "List the names of all customers.")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].upper().startswith("SELECT"), r.stdout  # the query above the table
    assert "name" in r.stdout and "Ann" in r.stdout and "Bo" in r.stdout
    assert "Cy" not in r.stdout  # --rows 2 cuts the result
    assert "first 2 rows shown" in r.stdout
    assert sha256(shop) == before
    [(role_q, _, question), (role_a, stats, content)] = stored_turns()
    assert (role_q, role_a, question) == ("user", "assistant", "List the names of all customers.")
    assert stats["sql"].upper().startswith("SELECT") and stats["rows"] == 2 and stats["truncated"] is True
    assert stats["completion_tokens"] > 0 and "```sql" in content


def test_json_prints_question_sql_columns_rows_truncated_stats(shop, qwen05_path):
    before = sha256(shop)
    r = llamarch("sql", "--db", str(shop), *FAST, "--json", "--no-show-sql", "How many customers live in Oslo?")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"question", "sql", "columns", "rows", "truncated", "stats"}
    assert out["question"] == "How many customers live in Oslo?"
    assert "oslo" in out["sql"].lower() and out["rows"] == [[2]] and out["truncated"] is False
    assert out["stats"]["attempts"] == 1 and out["stats"]["completion_tokens"] > 0
    assert sha256(shop) == before


def test_a_failing_first_query_is_retried_once_with_the_sqlite_error(shop, qwen05):
    """The first reply is forced (a missing column); the repair is the real model's own."""
    from llamarch.sql.ask import Asker
    from llamarch.sql.guard import open_readonly

    before = sha256(shop)
    conn = open_readonly(shop)
    try:
        asker = Asker(qwen05, conn, max_tokens=96)
        answer = asker.ask(
            "List the names of the customers who live in Rome.",
            first_reply="```sql\nSELECT full_name FROM customer WHERE town = 'Rome'\n```",
        )
    finally:
        conn.close()
    assert answer.retried and answer.attempts[0].error == "no such column: full_name"
    assert answer.attempts[1].stats is not None  # the second reply came from the model
    assert answer.ok, answer.error
    assert answer.result.rows == (("Bo",),), answer.sql
    assert sha256(shop) == before


def test_a_write_leading_question_is_refused_by_the_guard_and_the_db_is_unchanged(shop, qwen05_path):
    from llamarch.sql.ask import ask

    before = sha256(shop)
    r = llamarch("sql", "--db", str(shop), *FAST, "Delete all customers from the database.")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "refused by the read-only guard: not allowed: this connection is read-only (DELETE)" in r.stderr
    assert sha256(shop) == before
    # the same code path with the write forced, whatever a model would write: refused, not retried
    for write in ("DROP TABLE customer", "UPDATE customer SET city = 'Paris'", "INSERT INTO orders VALUES (9, 1, 1)"):
        answer = ask(None, shop, "Do something", first_reply=f"```sql\n{write}\n```")
        assert answer.refused and len(answer.attempts) == 1 and "read-only" in answer.error
    assert sha256(shop) == before
    with sqlite3.connect(shop) as conn:
        assert conn.execute("SELECT count(*) FROM customer").fetchone() == (4,)


def test_the_repl_reads_questions_and_commands_from_stdin(shop, qwen05_path):
    before = sha256(shop)
    script = "/schema\nHow many orders are there?\n/sql\n/nope\n/exit\nnot asked\n"
    r = llamarch("sql", "--db", str(shop), *FAST, stdin=script)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    schema = schema_text(shop).splitlines()
    assert out[: len(schema)] == schema and schema[0] == "customer(id, name, city)"  # /schema: the model's view
    queries = [line for line in out if line.upper().startswith("SELECT")]
    assert len(queries) == 2 and queries[0] == queries[1]  # the query above the rows, then /sql
    assert "4" in r.stdout and "1 row" in r.stdout
    assert "unknown command /nope" in r.stderr
    turns = stored_turns()
    assert [t[0] for t in turns] == ["user", "assistant"]  # "not asked" came after /exit
    assert turns[0][2] == "How many orders are there?" and turns[1][1]["rows"] == 1
    assert sha256(shop) == before


def test_from_a_distill_run_uses_its_adapter_and_student_and_warns_of_another_schema(tmp_path, shop, qwen05_path):
    """A run directory as `distill --check sql` writes it; its database has another schema."""
    from llamarch.gguf_file import read_header
    from lora_file import write_lora

    meta = read_header(qwen05_path).metadata
    n_embd, n_layer = meta["qwen2.embedding_length"], meta["qwen2.block_count"]
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    write_lora(
        run / "adapter" / "adapter.gguf",
        "qwen2",
        {f"blk.{i}.attn_q.weight": (n_embd, n_embd) for i in range(n_layer)},
        scale=0.001,
    )
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, label TEXT)")
    (run / "report.json").write_text(
        json.dumps({"check": "sql", "database": str(other), "student": MODEL, "adapter": "adapter/adapter.gguf"})
    )
    before = sha256(shop)
    r = llamarch(
        "sql",
        "--db",
        str(shop),
        "--from",
        str(run),
        "--max-tokens",
        "96",
        "--threads",
        "2",
        "--json",
        "How many customers are there?",
    )
    assert r.returncode == 0, r.stderr
    notes = r.stderr.strip().splitlines()
    assert notes[0].startswith(f"using the adapter {run / 'adapter' / 'adapter.gguf'} with {MODEL}"), notes
    assert "schema differs" in notes[1] and len(notes) == 2, notes
    assert json.loads(r.stdout)["rows"] == [[4]]
    [_, (_, stats, _)] = stored_turns()
    assert stats["adapter"] == str(run / "adapter" / "adapter.gguf")
    assert sha256(shop) == before
