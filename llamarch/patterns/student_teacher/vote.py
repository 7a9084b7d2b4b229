"""Self-consistency voting, where the seed's pattern finds it: it lives in `llamarch.evals.vote`,
next to the checkers whose results it votes on."""

from ...evals.vote import MIN_VOTES, Vote, pick, vote

__all__ = ["MIN_VOTES", "Vote", "pick", "vote"]
