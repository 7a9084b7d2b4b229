"""AUROC and best-threshold accuracy of a judge's scores against pass/fail."""

from __future__ import annotations

import itertools
import random

import pytest

from llamarch.evals.agreement import agreement, auroc, best_threshold


def brute_auroc(scores, labels):
    """The definition: P(score of a positive > score of a negative), ties counting half."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def brute_best(scores, labels):
    best = None
    for t in sorted(set(scores)) + [float("inf")]:
        acc = sum((s >= t) == y for s, y in zip(scores, labels)) / len(labels)
        if best is None or acc > best[1]:
            best = (t, acc)
    return best


def test_perfect_inverted_and_useless_judges() -> None:
    labels = [False, False, True, True]
    assert auroc([1, 2, 3, 4], labels) == 1.0
    assert auroc([4, 3, 2, 1], labels) == 0.0
    assert auroc([5, 5, 5, 5], labels) == 0.5
    assert best_threshold([1, 2, 3, 4], labels) == (3.0, 1.0)


def test_ties_count_half() -> None:
    # positive 2 vs negatives 1 (win) and 2 (tie); positive 3 wins both: (1 + 0.5 + 2) / 4
    assert auroc([1, 2, 2, 3], [False, False, True, True]) == pytest.approx(0.875)


def test_one_class_has_no_auroc() -> None:
    assert auroc([1, 2], [True, True]) is None
    assert best_threshold([1, 2], [True, True]) == (1.0, 1.0)
    assert best_threshold([1, 2], [False, False]) == (float("inf"), 1.0)


def test_matches_the_definition_on_random_data() -> None:
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(2, 30)
        scores = [rng.choice([0, 1, 2, 3, 5, 7, 10]) + rng.choice([0, 0.5]) for _ in range(n)]
        labels = [rng.random() < 0.4 for _ in range(n)]
        if any(labels) and not all(labels):
            assert auroc(scores, labels) == pytest.approx(brute_auroc(scores, labels))
        assert best_threshold(scores, labels)[1] == pytest.approx(brute_best(scores, labels)[1])


def test_agreement_report() -> None:
    report = agreement([9, 8, 2, 7, 1, 3], [True, True, False, True, False, True])
    assert report["n"] == 6 and report["positives"] == 4
    assert report["auroc"] == 1.0 and report["accuracy_at_best"] == 1.0 and report["best_threshold"] == 3.0
    assert report["majority_accuracy"] == round(4 / 6, 4)


def test_mismatched_lengths_are_an_error() -> None:
    with pytest.raises(ValueError):
        auroc([1, 2], [True])
