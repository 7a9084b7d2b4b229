"""Which of several answers to accept: the ones execution agrees on (self-consistency)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence, Set
from dataclasses import asdict, dataclass

from .checkers import Check

MIN_VOTES = 2


@dataclass(frozen=True)
class Vote:
    """The answers accepted among several samples, and why."""

    accepted: tuple[int, ...]  # indices of the accepted answers, in sample order
    how: str  # reference | majority | none
    votes: int  # answers in the accepted group
    executed: int  # answers that ran
    samples: int
    reason: str = ""

    @property
    def verified(self) -> bool:
        return bool(self.accepted)

    def to_dict(self) -> dict:
        return asdict(self)


def vote(checks: Sequence[Check], has_reference: bool = False, min_votes: int = MIN_VOTES) -> Vote:
    """Accept the answers that pass (with a reference), else those whose result the most answers share.

    Without a reference, answers are grouped by what they do (their signature). The
    largest group wins when it has at least `min_votes` answers and no other group is as
    large. Empty results take part only when no answer gave any rows, and are then never
    accepted: nothing in them says the question was understood.
    """
    n = len(checks)
    executed = [i for i, c in enumerate(checks) if c.executed]
    if has_reference:
        passed = tuple(i for i, c in enumerate(checks) if c.passed)
        reason = "" if passed else "no answer gives the reference's result"
        return Vote(passed, "reference" if passed else "none", len(passed), len(executed), n, reason)
    if not executed:
        return Vote((), "none", 0, 0, n, "no answer ran")
    voters = [i for i in executed if not checks[i].empty]
    if not voters:
        return Vote(
            (),
            "none",
            0,
            len(executed),
            n,
            "every answer that ran found nothing (no rows, or a row of zeros and NULLs)",
        )
    counts = Counter(checks[i].signature for i in voters)
    ranked = counts.most_common()
    top, size = ranked[0]
    if size < min_votes:
        return Vote((), "none", size, len(executed), n, f"no {min_votes} answers agree")
    if len(ranked) > 1 and ranked[1][1] == size:
        return Vote((), "none", size, len(executed), n, f"a tie: two results have {size} answers each")
    accepted = tuple(i for i in voters if checks[i].signature == top)
    return Vote(accepted, "majority", size, len(executed), n)


def pick(answers: Sequence[str], accepted: Sequence[int]) -> int:
    """The accepted answer to learn from: the most common text among them, then the shortest."""
    if not accepted:
        raise ValueError("nothing was accepted")
    texts = Counter(answers[i].strip() for i in accepted)
    return min(accepted, key=lambda i: (-texts[answers[i].strip()], len(answers[i]), i))


class Settler:
    """Says when a question's vote is decided, so its samples still running need not finish.

    Decided means the leading result has `min_votes` answers and more than the runner-up
    could reach if every sample still to come joined it: the vote on the samples so far
    accepts the same result as the vote on all of them would (fewer answers of it, so the one
    picked may be another query with those rows). Questions in `exempt` (those with a
    reference: any later sample may be the one that passes) are never settled.
    """

    def __init__(
        self, check: Callable[[int, str], Check], samples: int, min_votes: int, exempt: Set[int] = frozenset()
    ):
        self.check, self.samples, self.min_votes, self.exempt = check, samples, min_votes, exempt
        self._tallies: dict[int, Counter[str]] = {}
        self._seen: Counter[int] = Counter()

    def add(self, question: int, reply: str) -> bool:
        """Count one finished sample of `question`; True once its vote is decided."""
        self._seen[question] += 1
        if question in self.exempt:
            return False
        check = self.check(question, reply)
        tally = self._tallies.setdefault(question, Counter())
        if check.executed and not check.empty:
            tally[check.signature] += 1
        return self.decided(tally, self.samples - self._seen[question], self.min_votes)

    @staticmethod
    def decided(tally: Counter[str], remaining: int, min_votes: int) -> bool:
        """Whether no `remaining` samples can change which result wins, or whether one does."""
        ranked = [n for _, n in tally.most_common(2)]
        lead, second = (ranked + [0, 0])[:2]
        return lead >= min_votes and lead > second + remaining
