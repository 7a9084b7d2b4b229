"""How well a judge's scores predict a ground truth (tests passed or failed).

AUROC: the chance that a randomly chosen passing answer scores higher than a randomly
chosen failing one (ties count half); 0.5 is a coin, 1.0 a perfect judge. The accuracy at
the best threshold says how often "score >= threshold means it passes" is right, next to
what always guessing the majority class would get.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _check(scores: Sequence[float], labels: Sequence[bool]) -> None:
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores for {len(labels)} labels")


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve of `scores` for `labels` (True = positive); None when one class is absent."""
    _check(scores, labels)
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks([float(s) for s in scores])
    rank_sum = sum(r for r, y in zip(ranks, labels) if y)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def best_threshold(scores: Sequence[float], labels: Sequence[bool]) -> tuple[float, float]:
    """(threshold, accuracy) of the best rule "positive when score >= threshold".

    Candidates are every distinct score and +inf (everything negative); among equally
    accurate thresholds the lowest wins.
    """
    _check(scores, labels)
    if not scores:
        raise ValueError("no scores")
    pairs = sorted(zip((float(s) for s in scores), labels), key=lambda p: p[0])
    n = len(pairs)
    negatives_below = 0  # negatives among scores below the current candidate
    positives_from = sum(1 for _, y in pairs if y)  # positives at or above it
    best = (float("inf"), (n - positives_from) / n)  # threshold above every score
    i = 0
    while i < n:
        accuracy = (negatives_below + positives_from) / n
        if accuracy > best[1] or (accuracy == best[1] and pairs[i][0] < best[0]):
            best = (pairs[i][0], accuracy)
        j = i
        while j < n and pairs[j][0] == pairs[i][0]:  # step past ties together
            negatives_below += not pairs[j][1]
            positives_from -= bool(pairs[j][1])
            j += 1
        i = j
    return best


def agreement(scores: Sequence[float], labels: Sequence[bool]) -> dict[str, Any]:
    """Everything a report needs: counts, AUROC, best threshold and its accuracy, majority baseline."""
    _check(scores, labels)
    n = len(labels)
    positives = sum(1 for y in labels if y)
    threshold, accuracy = best_threshold(scores, labels) if n else (None, None)
    score = auroc(scores, labels)
    return {
        "n": n,
        "positives": positives,
        "auroc": None if score is None else round(score, 4),
        "best_threshold": threshold,
        "accuracy_at_best": None if accuracy is None else round(accuracy, 4),
        "majority_accuracy": round(max(positives, n - positives) / n, 4) if n else None,
    }
