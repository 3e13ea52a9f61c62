"""Wordle's per-letter feedback, with the game's handling of repeated letters."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Literal

Mark = Literal["green", "yellow", "gray"]


@lru_cache(maxsize=1 << 18)
def score(guess: str, answer: str) -> tuple[Mark, ...]:
    """The mark of each letter of ``guess`` against ``answer`` (same length, lower case).

    Green: the right letter in the right place. Yellow: the letter is in the answer elsewhere, counting
    each answer letter once: greens claim their letters first, then yellows go left to right while
    unclaimed copies remain. Gray: every other letter. So ``score("speed", "abide")`` marks only the
    first ``e`` yellow, and ``score("eerie", "steep")`` marks two ``e`` yellow and the third gray.
    """
    marks: list[Mark] = ["gray"] * len(guess)
    unclaimed: Counter[str] = Counter()
    for i, (g, a) in enumerate(zip(guess, answer, strict=True)):
        if g == a:
            marks[i] = "green"
        else:
            unclaimed[a] += 1
    for i, g in enumerate(guess):
        if marks[i] == "gray" and unclaimed[g] > 0:
            marks[i] = "yellow"
            unclaimed[g] -= 1
    return tuple(marks)
