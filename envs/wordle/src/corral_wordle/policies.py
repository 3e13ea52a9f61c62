"""Policies for `corral run --policy NAME` and `corral validate`: ``(observation, rng) -> action``.

``scripted`` reaches the manifest's ``max_reward``: over the whole answer list it always solves within
five guesses (the tests play every answer). It keeps no memory; it rebuilds what it knows from the board.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from random import Random

from .feedback import score
from .models import WordleAction, WordleObservation
from .words import ALLOWED, ANSWERS

#: The first guess: the answer that splits the answer list into the smallest groups (see ``_best_probe``).
OPENER = "trace"


def scripted(observation: WordleObservation, rng: Random) -> WordleAction:
    """Guess the word that best splits the answers still consistent with the board.

    Candidates are the answers every past guess would have scored exactly as it did (all allowed words
    when the answer was given as a reset option from outside the answer list). With one or two left it
    guesses a candidate; otherwise it probes with the answer-list word that minimises the expected number
    of candidates left (the sum of squared group sizes), preferring a candidate on ties.
    """
    return WordleAction(guess=_decide(tuple((row.word, tuple(row.feedback)) for row in observation.guesses)))


@lru_cache(maxsize=4096)
def _decide(board: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    # Boards repeat across episodes (every game starts with the same opener), so decisions are cached.
    candidates = consistent(board, ANSWERS) or consistent(board, sorted(ALLOWED))
    if not candidates:
        raise ValueError("no word in the word lists fits this board; was it played with another word list?")
    if not board and len(candidates) == len(ANSWERS):
        return OPENER
    if len(candidates) <= 2:
        return candidates[0]
    return _best_probe(candidates)


def random(observation: WordleObservation, rng: Random) -> WordleAction:
    """A random answer-list word not guessed yet: always a valid guess, rarely a good one."""
    tried = {row.word for row in observation.guesses}
    return WordleAction(guess=rng.choice([word for word in ANSWERS if word not in tried]))


def consistent(board: Sequence[tuple[str, tuple[str, ...]]], words: Sequence[str]) -> list[str]:
    """The ``words`` that, as the answer, would have scored every guess on ``board`` as it was scored."""
    return [word for word in words if all(score(guess, word) == marks for guess, marks in board)]


def _best_probe(candidates: list[str]) -> str:
    pool = set(candidates)

    def cost(probe: str) -> tuple[int, bool, str]:
        groups = Counter(score(probe, word) for word in candidates)
        return sum(n * n for n in groups.values()), probe not in pool, probe

    return min(ANSWERS, key=cost)
