"""Voting on checked answers, and the training rows the verified recipes make (pure logic)."""

from __future__ import annotations

from llamarch.evals.checkers import FAILED, PASSED, UNKNOWN, Check, get_checker
from llamarch.evals.vote import pick, vote
from llamarch.patterns.student_teacher.verified import drop_result_overlap, training_rows
from llamarch.sql.questions import Question


def ran(sig: str, sql: str = "SELECT 1", empty: bool = False) -> Check:
    return Check(UNKNOWN, "1 row", sig, sql, empty)


def broke(reason: str = "no such table: x") -> Check:
    return Check(FAILED, reason, None, "SELECT * FROM x")


def test_the_result_most_answers_share_wins():
    checks = [ran("a"), ran("b"), ran("a"), broke(), ran("a"), ran("c")]
    v = vote(checks)
    assert v.verified and v.how == "majority"
    assert v.accepted == (0, 2, 4) and v.votes == 3 and v.executed == 5 and v.samples == 6


def test_a_tie_a_lone_answer_and_nothing_running_are_not_verified():
    assert not vote([ran("a"), ran("b"), ran("a"), ran("b")]).verified  # tie
    assert "tie" in vote([ran("a"), ran("b"), ran("a"), ran("b")]).reason
    assert not vote([ran("a"), broke(), broke()]).verified  # one vote only
    nothing = vote([broke(), broke()])
    assert not nothing.verified and nothing.reason == "no answer ran"


def test_empty_results_do_not_vote():
    checks = [ran("e", empty=True)] * 5 + [ran("a"), ran("a")]
    assert vote(checks).accepted == (5, 6)
    all_empty = vote([ran("e", empty=True)] * 4)
    assert not all_empty.verified and "no rows" in all_empty.reason


def test_with_a_reference_only_passing_answers_are_accepted_whatever_the_majority():
    checks = [Check(FAILED, "differs", "a", "q1"), Check(FAILED, "differs", "a", "q1"), Check(PASSED, "ok", "r", "q2")]
    v = vote(checks, has_reference=True)
    assert v.accepted == (2,) and v.how == "reference"
    assert not vote(checks[:2], has_reference=True).verified


def test_pick_prefers_the_most_common_text_then_the_shortest():
    answers = ["SELECT a FROM t", "SELECT  a FROM t WHERE 1", "SELECT a FROM t", "SELECT a FROM t WHERE 1"]
    assert pick(answers, [1, 0, 2]) == 0
    assert pick(["SELECT long_name FROM t", "SELECT a FROM t"], [0, 1]) == 1


def test_corrected_keeps_the_students_own_verified_answer_and_the_student_prompt_only():
    questions = [Question("How many?", None, "q:1"), Question("Which?", None, "q:2"), Question("Who?", None, "q:3")]
    student = [[ran("a", "SELECT count(*) FROM t")], [ran("x", "SELECT wrong FROM t")], [broke()]]
    teacher = [
        (vote([ran("a", "SELECT COUNT(*) FROM t")] * 2), [ran("a", "SELECT COUNT(*) FROM t")] * 2),
        (vote([ran("b", "SELECT name FROM t")] * 3), [ran("b", "SELECT name FROM t")] * 3),
        (vote([broke(), broke()]), [broke(), broke()]),
    ]
    rows, counts = training_rows("corrected", questions, student, teacher, "t(id, name)")
    assert counts == {
        "rows": 2,
        "student_answers": 1,
        "teacher_answers": 1,
        "unverified": 1,
        "repaired": 0,
        "from_queries": 0,
    }
    assert rows[0]["messages"][-1]["content"] == "```sql\nSELECT count(*) FROM t\n```"  # the student's own words
    assert rows[1]["messages"][-1]["content"] == "```sql\nSELECT name FROM t\n```"
    user = rows[0]["messages"][1]["content"]
    assert "t(id, name)" in user and user.endswith("Question: How many?")
    rows, counts = training_rows("verified", questions, student, teacher, "t(id, name)")
    assert counts["teacher_answers"] == 2 and rows[0]["messages"][-1]["content"].endswith("SELECT COUNT(*) FROM t\n```")


def test_a_training_question_whose_verified_result_is_a_held_out_result_is_dropped():
    questions = [Question("a", None, ""), Question("b", None, "")]
    teacher = [(vote([ran("held")] * 2), [ran("held")] * 2), (vote([ran("new")] * 2), [ran("new")] * 2)]
    kept, kept_teacher, kept_student, dropped = drop_result_overlap(
        questions, teacher, [[broke()], [broke()]], {"held"}
    )
    assert dropped == 1 and [q.question for q in kept] == ["b"] and len(kept_teacher) == len(kept_student) == 1


def test_any_callable_is_a_checker_and_a_wrong_name_lists_the_right_ones():
    checker = get_checker(lambda task, answer: "42" in answer)
    assert checker(None, "it is 42").passed and not checker(None, "it is 41").passed
    try:
        get_checker("spreadsheet")
    except Exception as e:  # noqa: BLE001
        assert "python, sql" in str(e)
    else:
        raise AssertionError("an unknown checker name was accepted")


def test_the_python_checker_runs_tests_and_docstring_examples_in_the_sandbox():
    from llamarch.evals.checkers import PythonChecker, Task

    check = PythonChecker(timeout_s=5)
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    bad = "```python\ndef add(a, b):\n    return a - b\n```"
    task = Task("Add two numbers.", tests="assert add(2, 3) == 5")
    assert check(task, good).passed
    failed = check(task, bad)
    assert failed.status == "failed" and failed.reason and failed.signature
    doc = '```python\ndef double(x):\n    """\n    >>> double(4)\n    8\n    """\n    return x * 3\n```'
    assert check(Task("Double it."), doc).status == "failed"
    assert check(Task("Double it."), doc.replace("x * 3", "x * 2")).passed
    assert check(Task("Anything."), "no code here").reason == "no Python code in the answer"


def test_the_sql_checker_on_a_real_database(tmp_path):
    import hashlib
    import sqlite3

    from llamarch.evals.checkers import SQLChecker, Task

    db = tmp_path / "t.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER);"
        "INSERT INTO t VALUES (1, 'a', 5), (2, 'b', 7), (3, 'c', 7);"
    )
    conn.commit()
    conn.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    check = SQLChecker(db, max_rows=2)
    names = "```sql\nSELECT name FROM t WHERE n = 7\n```"
    same = check(Task("Names with n 7?"), "SELECT name FROM t WHERE n > 6;")
    assert check(Task("Names with n 7?"), names).signature == same.signature and same.status == "unknown"
    assert check(Task("Names with n 7?", "SELECT name FROM t WHERE n = 7 ORDER BY id DESC"), names).status == "failed"
    assert check(Task("Names with n 7?", "SELECT name FROM t WHERE n >= 7"), names).passed
    assert check(Task("q"), "SELECT count(*) FROM t WHERE n > 100").empty  # a count of nothing
    assert not check(Task("q"), "SELECT count(*) FROM t").empty
    assert "more than 2 rows" in check(Task("q"), "SELECT * FROM t").reason
    refused = check(Task("q"), "```sql\nDELETE FROM t\n```")
    assert refused.status == "failed" and "DELETE" in refused.reason and not refused.executed
    assert check(Task("q"), "I cannot answer that.").reason == "no SQL query in the answer"
    check.close()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_query_checked_without_a_reference_runs_once_while_it_is_kept(tmp_path):
    """The settling and the vote check the same samples: SQLite runs each query once."""
    import sqlite3

    from llamarch.evals.checkers import SQLChecker, Task

    db = tmp_path / "t.sqlite"
    with sqlite3.connect(db) as conn:
        conn.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO t VALUES (1, 5), (2, 7);")
    conn.close()
    check = SQLChecker(db)
    ran: list[str] = []
    check.conn.set_trace_callback(lambda statement: ran.append(statement) if "FROM t" in statement else None)
    first = check(Task("q"), "SELECT n FROM t WHERE n > 6")
    assert check(Task("another question"), "```sql\nSELECT n FROM t WHERE n > 6\n```") == first
    assert check(Task("q"), "SELECT n FROM nowhere").status == "failed"
    assert check(Task("q"), "SELECT n FROM nowhere").reason == "no such table: nowhere"
    assert len(ran) == 1  # the failing query never reached the trace: it did not prepare
    assert check(Task("q", "SELECT 7"), "SELECT n FROM t WHERE n > 6").passed  # with a reference: run again
    assert len(ran) == 2
    check.CHECKS_KEPT = 1
    check(Task("q"), "SELECT id FROM t")
    check(Task("q"), "SELECT n FROM t WHERE n > 6")  # pushed out by the one before: runs again
    assert len(ran) == 4
    check.close()


def test_a_built_query_is_the_answer_where_the_student_misses_it():
    from llamarch.evals.vote import Vote

    built = "SELECT Album.Title FROM Album WHERE Album.ArtistId = 1"
    questions = [
        Question("Which albums has artist 1?", built, "from-query:1"),
        Question("Count?", built, "from-query:2"),
    ]
    student = [
        [Check(FAILED, "0 rows, the reference has 2", "x", "SELECT Title FROM Album")],
        [Check(PASSED, "", "s", built)],
    ]
    query = Check(PASSED, "2 rows, as the reference", "s", built)
    teacher = [(Vote((0,), "query", 1, 1, 1), [query]), (Vote((0,), "query", 1, 1, 1), [query])]
    rows, counts = training_rows("corrected", questions, student, teacher, "Album(AlbumId, Title, ArtistId)")
    assert counts["from_queries"] == 2 and counts["teacher_answers"] == 1 and counts["student_answers"] == 1
    assert rows[0]["messages"][-1]["content"] == f"```sql\n{built}\n```"


def test_a_settled_vote_accepts_what_the_vote_on_every_sample_would():
    """Every way 6 samples can come out (3 results, an empty one, a failure), in order: once
    the Settler says a question is decided, no later samples change the accepted result."""
    from itertools import product

    from llamarch.evals.vote import Settler

    kinds = {"a": ran("a"), "b": ran("b"), "c": ran("c"), "e": ran("e", empty=True), "x": broke()}

    def accepted(checks, min_votes):
        v = vote(checks, min_votes=min_votes)
        return {checks[i].signature for i in v.accepted}

    settled_early = 0
    for min_votes in (2, 3):
        for outcome in product(kinds, repeat=6):
            checks = [kinds[k] for k in outcome]
            settler = Settler(lambda q, reply, checks=checks: checks[int(reply)], samples=6, min_votes=min_votes)
            for j in range(6):
                if settler.add(0, str(j)):
                    assert accepted(checks[: j + 1], min_votes) == accepted(checks, min_votes) != set(), outcome
                    settled_early += j < 5
                    break
    assert settled_early > 1000  # and it does settle early, often


def test_a_unanimous_question_settles_at_its_fifth_of_eight_and_one_with_a_reference_never():
    from llamarch.evals.vote import Settler

    settler = Settler(lambda q, reply: ran("a"), samples=8, min_votes=4, exempt={1})
    assert [settler.add(0, "") for _ in range(5)] == [False] * 4 + [True]
    assert not any(settler.add(1, "") for _ in range(8))
