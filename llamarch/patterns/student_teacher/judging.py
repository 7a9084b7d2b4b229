"""How well a teacher judges: its scores of a student's HumanEval answers against the tests.

The student answers each problem (`humaneval.evaluate`, so stored answers are reused), the
tests say which answers pass, and the teacher scores each answer blind to the tests: it sees
the question as the student saw it (the user message) and the student's whole reply. The
report says how well the score predicts pass/fail (AUROC, accuracy at the best threshold
next to always guessing the majority class) and how the scores of passing and failing
answers are spread.

    report = judge_report(run.results, verdicts)
    report["agreement"]["auroc"]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ...evals.agreement import agreement
from ...evals.humaneval import Problem, ProblemResult, build_prompt
from ...identity import ModelIdentity
from .verdict import MAX_SCORE, MIN_SCORE, Verdict

VERDICT_KIND = "verdict"  # the store kind `llamarch judge --pairs` uses too: same key, same verdict


def judge_pairs(problems: Sequence[Problem], results: Sequence[ProblemResult]) -> list[tuple[str, str]]:
    """(question, answer) for the teacher: the student's user message and its whole reply."""
    return [(build_prompt(p), r.completion) for p, r in zip(problems, results)]


def judge_verdicts(
    store: Any,
    open_teacher: Callable[[], Any],
    teacher_identity: ModelIdentity,
    rubric: Any,
    options: dict[str, Any],
    pairs: Sequence[tuple[str, str]],
    parallel: int | None,
    advance: Callable[[int], None],
) -> tuple[list[dict[str, Any]], int]:
    """(a verdict per pair, as `Verdict.to_dict()` plus its "seconds", how many were computed now).

    Verdicts are keyed by the teacher, `rubric`, `options` (what `open_teacher()` must
    build the teacher with) and what it saw; stored ones are reused and the teacher is
    opened only when one is missing. Each new verdict is stored as it comes, so a killed
    run keeps what it judged. Only the score is asked for (no improved answer).
    """
    from .distill import fill_from_store, verdict_key

    computed = 0

    def compute(indices: list[int]) -> Iterator[tuple[int, Any]]:
        nonlocal computed
        for j, verdict, seconds in open_teacher().judge_many([pairs[i] for i in indices], parallel, improve=False):
            computed += 1
            yield j, {**verdict.to_dict(), "seconds": round(seconds, 3)}

    keys = [verdict_key(teacher_identity, rubric, q, a, options, improve=False) for q, a in pairs]
    values = fill_from_store(store, VERDICT_KIND, keys, compute, advance)
    return values, computed


def score_counts(scores: Sequence[int]) -> dict[str, int]:
    """How many answers got each score, every score from MIN_SCORE to MAX_SCORE listed."""
    return {str(s): sum(1 for x in scores if x == s) for s in range(MIN_SCORE, MAX_SCORE + 1)}


def _mean(values: Sequence[int]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def judge_report(results: Sequence[ProblemResult], verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """Agreement of the valid verdicts' scores with the tests, score spreads, invalid verdicts."""
    if len(results) != len(verdicts):
        raise ValueError(f"{len(verdicts)} verdicts for {len(results)} results")
    valid = [(r.passed, v.score) for r, v in zip(results, verdicts) if v.valid and v.score is not None]
    labels = [passed for passed, _ in valid]
    scores = [score for _, score in valid]
    passing = [s for passed, s in valid if passed]
    failing = [s for passed, s in valid if not passed]
    fit = agreement(scores, labels)
    if fit["best_threshold"] == float("inf"):  # best to call every answer failing (JSON has no inf)
        fit["best_threshold"] = None
    invalid = [r.task_id for r, v in zip(results, verdicts) if not (v.valid and v.score is not None)]
    return {
        "answers": len(results),
        "passed": sum(r.passed for r in results),
        "judged": len(valid),
        "invalid": len(invalid),
        "invalid_task_ids": invalid,
        "retried": sum(1 for v in verdicts if v.attempts > 1),
        "agreement": fit,
        "scores": {"passed": score_counts(passing), "failed": score_counts(failing)},
        "mean_score": {"passed": _mean(passing), "failed": _mean(failing)},
    }
