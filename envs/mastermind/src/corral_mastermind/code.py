"""Codes and their scoring: a code is a string of colour letters, one per peg."""

from __future__ import annotations

import itertools
from collections import Counter
from functools import lru_cache

#: Every colour letter a game may use; a game with ``n`` colours uses the first ``n``.
PALETTE = "ABCDEFGH"


def palette(colors: int) -> str:
    """The colour letters of a game with ``colors`` colours."""
    return PALETTE[:colors]


@lru_cache(maxsize=1 << 18)
def score(guess: str, code: str) -> tuple[int, int]:
    """``(exact, partial)``: pegs of the right colour in the right place, and further pegs of a right colour
    in the wrong place. Each peg of the code is matched at most once, exact matches first, so
    ``score("AABB", "ABBB") == (3, 0)`` and ``score("AABC", "CAAD") == (1, 2)``.
    """
    exact = sum(g == c for g, c in zip(guess, code, strict=True))
    common = sum((Counter(guess) & Counter(code)).values())
    return exact, common - exact


@lru_cache(maxsize=8)
def all_codes(colors: int, pegs: int) -> tuple[str, ...]:
    """Every code of a game, in alphabetical order."""
    return tuple("".join(p) for p in itertools.product(palette(colors), repeat=pegs))
