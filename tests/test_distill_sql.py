"""`llamarch distill --check sql` and `llamarch eval sql` end to end: real SQLite, real models.

SmolLM2 is the student and the 0.5B the teacher, on a small library database the test makes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from llamarch.sql import open_readonly, read_tables, result_signature, run_query
from llamarch.sql.sampled_queries import sample_queries

TRAIN = [
    {"question": "How many books are there?", "sql": "SELECT count(*) FROM book"},
    {"question": "List the names of all authors."},
    {"question": "What is the title of the longest book (most pages)?"},
    {"question": "How many authors are from France?", "sql": "SELECT count(*) FROM author WHERE country = 'France'"},
    {"question": "List the titles of books published after 1950."},
    {"question": "What is the total number of pages of all books?"},
    {"question": "Which authors are from the UK? Give their names."},  # the same as a held-out question
]
HELD_OUT = [
    {
        "question": "Which authors are from the UK? Give their names.",
        "sql": "SELECT name FROM author WHERE country = 'UK'",
    },
    {
        "question": "How many books did each author write? Give the author's name and the count.",
        "sql": "SELECT a.name, count(*) FROM author a JOIN book b ON b.author_id = a.id GROUP BY a.id",
    },
    {"question": "What is the average number of pages of a book?", "sql": "SELECT avg(pages) FROM book"},
]


def make_library(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT);
        CREATE TABLE book (id INTEGER PRIMARY KEY, title TEXT NOT NULL, author_id INTEGER REFERENCES author(id),
                           year INTEGER, pages INTEGER);
        INSERT INTO author VALUES (1, 'Jane Austen', 'UK'), (2, 'Victor Hugo', 'France'), (3, 'Albert Camus', 'France'),
                                  (4, 'George Orwell', 'UK'), (5, 'Toni Morrison', 'USA');
        INSERT INTO book VALUES (1, 'Emma', 1, 1815, 474), (2, 'Les Miserables', 2, 1862, 1462),
                                (3, 'The Stranger', 3, 1942, 123), (4, 'Nineteen Eighty-Four', 4, 1949, 328),
                                (5, 'Animal Farm', 4, 1945, 112), (6, 'Beloved', 5, 1987, 324),
                                (7, 'The Plague', 3, 1947, 308);
    """)
    conn.commit()
    conn.close()
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def llamarch(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from llamarch.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture()
def library(tmp_path: Path) -> Path:
    return make_library(tmp_path / "library.sqlite")


def test_distill_check_sql_end_to_end_trains_and_scores_by_execution(tmp_path, library, smollm_path, qwen05_path):
    before = sha256(library)
    train = write_jsonl(tmp_path / "train.jsonl", TRAIN)
    held = write_jsonl(tmp_path / "held.jsonl", HELD_OUT)
    notes = tmp_path / "notes.txt"
    notes.write_text("Countries are written as short names: UK, France, USA.")
    out = tmp_path / "run"
    cmd = [
        "distill",
        "--check",
        "sql",
        "--db",
        str(library),
        "--prompts",
        str(train),
        "--eval-questions",
        str(held),
        "--student",
        "smollm2-135m",
        "--teacher",
        "qwen2.5-coder-0.5b",
        "--samples",
        "4",
        "--max-tokens",
        "96",
        "--from-queries",
        "3",
        "--query-seed",
        "5",
        "--teacher-context",
        str(notes),
        "--iters",
        "2",
        "--train-option",
        "batch_size=1",
        "--train-option",
        "max_seq_length=256",
        "--threads",
        "2",
        "--out",
        str(out),
    ]
    proc = llamarch(*cmd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["judged_by"] == "execution" and report["recipe"] == "corrected"
    built = [json.loads(line) for line in (out / "query-questions.jsonl").read_text().splitlines()]
    assert report["settings"]["from_queries"] == 3 and len(built) <= 3
    assert report["questions"]["overlap_dropped"]["same_text"] == 1
    assert report["questions"]["train"] == 6 + len(built)
    assert report["training_set"]["from_queries"] <= len(built)
    conn = open_readonly(library)
    held_results = {result_signature(run_query(conn, q["sql"])) for q in HELD_OUT}
    for q in built:  # each built query runs, returns rows, and gives no held-out answer
        assert q["question"].strip() and result_signature(run_query(conn, q["sql"])) not in held_results
    drawn = sample_queries(conn, read_tables(conn), 3, 5, exclude=held_results)  # --query-seed 5, not --seed 0
    assert report["settings"]["query_seed"] == 5 and {q["sql"] for q in built} <= {q.sql for q in drawn}
    conn.close()
    models = report["evaluation"]["models"]
    assert set(models) == {"student", "student + adapter", "teacher greedy", "teacher amplified (K=4)"}, proc.stdout
    for summary in models.values():
        assert summary["questions"] == 3 and 0 <= summary["matched"] <= 3
    assert set(report["evaluation"]["student_change"]) >= {"mcnemar_exact_p", "delta_95ci_points", "fixed", "broken"}
    assert "held-out execution accuracy on 3 questions" in proc.stdout
    timings = json.loads((out / "timings.json").read_text())  # every phase's wall time, the held-out runs too
    phases = {"teacher writes the questions of queries", *(f"held-out: {name}" for name in models)}
    assert phases <= set(timings) and all(timings[p]["wall_s"] > 0 for p in phases), timings
    # The 0.5B answers these with the sample rows and value lists: most become training rows.
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    rows += [json.loads(line) for line in (out / "valid.jsonl").read_text().splitlines()]
    assert report["training_set"]["rows"] >= 3, report["training_set"]
    for row in rows:  # the student learns from its own prompt: no teacher context in its rows
        user = row["messages"][1]["content"]
        assert (
            "author(" in user and "Sample rows" not in user and "UK, France" not in user and "short names" not in user
        )
        assert row["messages"][-1]["content"].startswith("```sql\n")
    adapter = out / report["adapter"]
    assert adapter.is_file() and adapter.read_bytes()[:4] == b"GGUF"
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sha256(library) == before

    again = llamarch(*cmd)  # everything stored: nothing is answered or trained again
    assert again.returncode == 0, again.stderr[-3000:]
    timings = json.loads((out / "timings.json").read_text())
    assert "training" not in timings and timings["student answers"]["generation_s"] == 0
    assert json.loads((out / "report.json").read_text())["evaluation"] == report["evaluation"]


def test_eval_sql_prints_accuracy_and_json_and_resumes(tmp_path, library, qwen05_path):
    held = write_jsonl(tmp_path / "held.jsonl", HELD_OUT)
    out = tmp_path / "eval.json"
    args = [
        "eval",
        "sql",
        "--db",
        str(library),
        "--questions",
        str(held),
        "-m",
        "qwen2.5-coder-0.5b",
        "--max-tokens",
        "96",
        "--out",
        str(out),
    ]
    proc = llamarch(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("execution accuracy ") and "/3)" in proc.stdout
    data = json.loads(out.read_text())
    assert data["summary"]["questions"] == 3
    assert {"question", "prediction", "matched", "reason"} <= set(data["results"][0])
    again = llamarch(*args, "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["results"] == data["results"]
    retried = llamarch(*args, "--retry", "--json")  # the first replies stored; only the failed ones are asked again
    assert retried.returncode == 0, retried.stderr[-3000:]
    got = json.loads(retried.stdout)
    assert got["summary"]["settings"]["retry"] is True
    for before, after in zip(data["results"], got["results"]):
        assert ("retry" in after) == (not before["executed"])
        if before["executed"]:
            assert after == before


@pytest.mark.parametrize("case", ["missing_db", "not_a_db", "bad_line", "bad_reference"])
def test_bad_input_is_one_line(tmp_path, library, case):
    held = write_jsonl(tmp_path / "held.jsonl", HELD_OUT)
    db = library
    if case == "missing_db":
        db = tmp_path / "nope.sqlite"
    elif case == "not_a_db":
        db = tmp_path / "notes.sqlite"
        db.write_text("these are not the tables you are looking for\n" * 20)
    elif case == "bad_line":
        held.write_text(held.read_text() + '{"question": "unterminated\n')
    else:
        held.write_text(held.read_text() + json.dumps({"question": "q", "sql": "SELECT nope FROM author"}) + "\n")
    proc = llamarch("eval", "sql", "--db", str(db), "--questions", str(held), "-m", "smollm2-135m", timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    expected = {"missing_db": str(db), "not_a_db": str(db), "bad_line": f"{held}:4", "bad_reference": f"{held}:4"}[case]
    assert expected in lines[0], lines[0]


def test_sigkill_mid_run_resumes_without_answering_again(tmp_path, library, smollm_path, qwen05_path):
    import os
    import signal
    import time

    train = write_jsonl(tmp_path / "train.jsonl", TRAIN)
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-c",
        "from llamarch.cli import main; main()",
        "distill",
        "--check",
        "sql",
        "--db",
        str(library),
        "--prompts",
        str(train),
        "--student",
        "smollm2-135m",
        "--teacher",
        "qwen2.5-coder-0.5b",
        "--samples",
        "4",
        "--max-tokens",
        "96",
        "--no-train",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = out / "distill.db"

    def replies() -> dict[str, float]:
        """key -> when it was stored, of every stored reply set."""
        try:
            with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1) as conn:
                return dict(conn.execute("SELECT key, created FROM results WHERE kind = 'sql-replies'").fetchall())
        except sqlite3.Error:
            return {}

    def stored() -> int:
        return len(replies())

    deadline = time.monotonic() + 300
    while stored() < 8 and proc.poll() is None and time.monotonic() < deadline:  # the student's 6, then the teacher's
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = replies()
    assert len(before) >= 8
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    timings = json.loads((out / "timings.json").read_text())
    assert timings["student answers"]["generation_s"] == 0  # all stored before the kill
    after = replies()
    assert {k: after[k] for k in before} == before  # nothing stored before the kill was answered again
    assert len(after) >= 12  # the student's 6 and the teacher's 6 (and any repair)


def test_verified_answer_votes_the_teachers_samples_by_execution(library, qwen05_path):
    from llamarch.evals.checkers import Task, get_checker
    from llamarch.patterns.student_teacher import StudentTeacher
    from llamarch.sql.guard import open_readonly
    from llamarch.sql.prompt import sql_messages
    from llamarch.sql.schema import describe

    before = sha256(library)
    schema = describe(open_readonly(library), style="ddl")
    prompt = sql_messages("How many books are there?", schema)
    with StudentTeacher("smollm2-135m", "qwen2.5-coder-0.5b", check=get_checker("sql", db=library)) as st:
        st.teacher.options["max_tokens"] = 64
        answer, vote = st.verified_answer(prompt, samples=4, settle=False)
        assert vote.samples == 4 and vote.executed >= 2
        assert answer is not None and "count" in answer.lower()
        settled, early = st.verified_answer(prompt, samples=4)  # stops once the vote is decided
        ask = Task("How many books are there?")
        assert early.samples <= 4 and st.checker(ask, settled).signature == st.checker(ask, answer).signature
        answer, vote = st.verified_answer(prompt, reference="SELECT count(*) FROM book", samples=4)
        assert vote.how == "reference" and answer is not None
    assert sha256(library) == before


def test_held_out_questions_left_unscored_by_eval_limit_are_still_kept_out_of_training(tmp_path, library):
    from llamarch.patterns.student_teacher.verified import VerifiedConfig, VerifiedDistiller, spread

    held = write_jsonl(tmp_path / "held.jsonl", HELD_OUT)
    train = write_jsonl(tmp_path / "train.jsonl", [*TRAIN, {"question": HELD_OUT[2]["question"]}])
    config = VerifiedConfig(out=tmp_path / "run", db=library, prompts=train, eval_questions=held, eval_limit=1)
    distiller = VerifiedDistiller(config)
    test = distiller.load_held_out()
    assert len(test) == 3 and [q.question for q in spread(test, 1)] == [HELD_OUT[0]["question"]]
    kept, overlap = distiller.load_training(test)
    assert overlap["same_text"] == 2 and len(kept) == 6  # HELD_OUT[0]'s (scored) and HELD_OUT[2]'s (not)
    distiller.checker.close()


def test_a_built_question_that_says_something_else_is_not_trained_on(tmp_path, library, qwen05_path):
    """`confirm_questions`: the teacher answers each built one-table question the student got
    wrong; a question whose answer gives another result than its query's is left out, with why."""
    from llamarch.evals.checkers import Task
    from llamarch.patterns.student_teacher.verified import FROM_QUERY, VerifiedConfig, VerifiedDistiller
    from llamarch.sql.prompt import as_answer
    from llamarch.sql.questions import Question
    from llamarch.store import Store

    before = sha256(library)
    questions = [
        Question("How many books are there?", "SELECT count(*) FROM book", f"{FROM_QUERY}1"),
        Question("How many authors are there?", "SELECT count(*) FROM book", f"{FROM_QUERY}2"),  # it counts books
        Question("How many authors are listed?", "SELECT count(*) FROM book", f"{FROM_QUERY}3"),
        Question("List the names of all authors.", None, "train.jsonl:1"),  # not built: never confirmed
        Question(  # a join: a miss would as often mean a hard join, so it is not asked
            "How many authors are there?",
            "SELECT count(*) FROM book JOIN author ON book.author_id = author.id",
            f"{FROM_QUERY}4",
        ),
    ]
    config = VerifiedConfig(
        out=tmp_path / "run", db=library, teacher="qwen2.5-coder-0.5b", max_tokens=64, confirm_questions=True
    )
    distiller = VerifiedDistiller(config)
    check = distiller.checker
    wrong = as_answer("SELECT count(*) FROM author")
    student = [[check(Task(q.question, q.sql, q.source), wrong)] for q in questions]
    student[2] = [check(Task(questions[2].question, questions[2].sql), as_answer("SELECT count(*) FROM book"))]
    with Store(tmp_path / "store.db") as store:
        distiller.store = store
        try:
            unconfirmed = distiller.unconfirmed_questions(questions, {0, 1, 2, 4}, student)
        finally:
            distiller._teacher.close()
            check.close()
    assert set(unconfirmed) == {1}, unconfirmed  # 2: the student's own answer gave the query's result
    vote, checks = unconfirmed[1]
    assert not vote.verified and "another result" in vote.reason and len(checks) == 1
    assert sha256(library) == before
