"""How far a paired before/after change stands out from noise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def paired_difference(fixed: int, broken: int, items: int) -> dict[str, Any]:
    """McNemar's exact p and a 95% interval for the paired change in accuracy, in points.

    `fixed` items went from wrong to right, `broken` from right to wrong, out of `items`.
    McNemar's test is the two-sided binomial test on the items that changed sides; the
    interval is the normal one for a paired difference of proportions.
    """
    changed = fixed + broken
    tail = sum(math.comb(changed, i) for i in range(min(fixed, broken) + 1)) / 2**changed if changed else 1.0
    delta = (fixed - broken) / items if items else 0.0
    half_width = 1.96 * math.sqrt(max(changed - (fixed - broken) ** 2 / items, 0.0)) / items if items else 0.0
    return {
        "mcnemar_exact_p": round(min(1.0, 2 * tail), 4),
        "delta_95ci_points": [round(100 * (delta - half_width), 2), round(100 * (delta + half_width), 2)],
    }


def compare_paired(before: Sequence[bool], after: Sequence[bool]) -> dict[str, Any]:
    """Accuracy before and after on the same items, the change, and its significance."""
    if len(before) != len(after):
        raise ValueError("before and after must cover the same items")
    n = len(before)
    fixed = sum(1 for b, a in zip(before, after) if a and not b)
    broken = sum(1 for b, a in zip(before, after) if b and not a)
    return {
        "items": n,
        "before": round(100 * sum(before) / n, 2) if n else None,
        "after": round(100 * sum(after) / n, 2) if n else None,
        "delta_points": round(100 * (fixed - broken) / n, 2) if n else None,
        "fixed": fixed,
        "broken": broken,
        **paired_difference(fixed, broken, n),
    }
