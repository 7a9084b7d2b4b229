"""`llamarch eval judge`: a teacher's scores of HumanEval answers against the tests' pass/fail."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from llamarch.cli import cli
from llamarch.evals.humaneval import ProblemResult, build_prompt, load_problems
from llamarch.patterns.student_teacher.judging import judge_pairs, judge_report, score_counts
from llamarch.patterns.student_teacher.verdict import Verdict
from llamarch.store import default_path


def result(task_id: str, passed: bool) -> ProblemResult:
    return ProblemResult(
        task_id, passed, "passed" if passed else "failed", "", f"reply {task_id}", "", "fenced", 10, 5, "stop", 0.1, 0.1
    )


def verdict(score: int | None) -> Verdict:
    if score is None:
        return Verdict(None, "", "", "garbage", valid=False, error="no JSON object", attempts=2)
    return Verdict(score, "ok", "", f'{{"score": {score}}}')


def test_score_counts_list_every_score() -> None:
    assert score_counts([3, 3, 10]) == {**{str(s): 0 for s in range(1, 11)}, "3": 2, "10": 1}


def test_report_of_a_mixed_judge() -> None:
    results = [result("a", True), result("b", True), result("c", False), result("d", False), result("e", False)]
    verdicts = [verdict(9), verdict(4), verdict(6), verdict(2), verdict(None)]
    report = judge_report(results, verdicts)
    assert (report["answers"], report["passed"], report["judged"], report["invalid"]) == (5, 2, 4, 1)
    assert report["invalid_task_ids"] == ["e"] and report["retried"] == 1
    # passing {9, 4} vs failing {6, 2}: 3 of 4 pairs ordered right
    assert report["agreement"]["auroc"] == 0.75
    assert report["agreement"]["n"] == 4 and report["agreement"]["majority_accuracy"] == 0.5
    assert report["agreement"]["best_threshold"] == 4 and report["agreement"]["accuracy_at_best"] == 0.75
    assert report["scores"]["passed"]["9"] == 1 and report["scores"]["failed"]["6"] == 1
    assert sum(report["scores"]["failed"].values()) == 2  # the invalid verdict is counted apart
    assert report["mean_score"] == {"passed": 6.5, "failed": 4.0}


def test_report_when_everything_fails_is_valid_json() -> None:
    report = judge_report([result("a", False), result("b", False)], [verdict(8), verdict(7)])
    assert report["agreement"]["auroc"] is None
    assert report["agreement"]["best_threshold"] is None  # "call every answer failing", not inf
    assert report["agreement"]["accuracy_at_best"] == 1.0
    json.loads(json.dumps(report, allow_nan=False))


def test_report_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        judge_report([result("a", True)], [])


def test_teacher_sees_the_students_question_and_reply() -> None:
    problem = load_problems(0, 1)[0]
    [(question, answer)] = judge_pairs([problem], [result(problem.task_id, True)])
    assert question == build_prompt(problem) and problem.prompt.strip() in question
    assert "check(" not in question  # blind to the tests
    assert answer == f"reply {problem.task_id}"


def test_cli_eval_judge_stores_and_reuses(smollm_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "judge.json"
    # a short verdict budget keeps the test quick: smollm's verdicts may then be invalid, which the report counts
    args = [
        "eval",
        "judge",
        "-s",
        "smollm2-135m",
        "-t",
        "smollm2-135m",
        "--limit",
        "2",
        "--max-tokens",
        "64",
        "--judge-max-tokens",
        "32",
        "--n-ctx",
        "2048",
        "--json",
        "--out",
        str(out),
    ]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["student"]["problems"] == 2 and report["student"]["model"] == "smollm2-135m"
    assert report["answers"] == 2 and report["judged"] + report["invalid"] == 2
    assert set(report["agreement"]) == {
        "n",
        "positives",
        "auroc",
        "best_threshold",
        "accuracy_at_best",
        "majority_accuracy",
    }
    assert set(report["scores"]) == {"passed", "failed"}
    assert sum(map(sum, (c.values() for c in report["scores"].values()))) == report["judged"]
    assert report["verdicts_computed"] == 2 and report["verdicts_resumed"] == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["task_id"] for r in rows] == ["HumanEval/0", "HumanEval/1"]
    assert all("score" in r["verdict"] and "passed" in r for r in rows)
    with sqlite3.connect(default_path()) as db:
        assert db.execute("SELECT count(*) FROM results WHERE kind='verdict'").fetchone()[0] == 2

    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    rerun = json.loads(again.stdout)
    assert rerun["verdicts_computed"] == 0 and rerun["verdicts_resumed"] == 2
    assert rerun["student"]["resumed"] == 2
    assert {k: rerun[k] for k in ("agreement", "scores", "invalid")} == {
        k: report[k] for k in ("agreement", "scores", "invalid")
    }


def test_cli_eval_judge_text_report_and_bad_offset(smollm_path: Path) -> None:
    bad = CliRunner().invoke(cli, ["eval", "judge", "-s", "smollm2-135m", "-t", "smollm2-135m", "--offset", "500"])
    assert bad.exit_code != 0 and "past the last problem" in bad.output
