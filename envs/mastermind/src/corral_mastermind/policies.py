"""Policies for `corral run --policy NAME` and `corral validate`: ``(observation, rng) -> action``.

``scripted`` reaches the manifest's ``max_reward``: with the default 4 pegs, 6 colours and 10 guesses it
cracks every one of the 1,296 codes within 8 guesses (the tests play them all). It keeps no memory; it
rebuilds what it knows from the board.
"""

from __future__ import annotations

from functools import lru_cache
from random import Random

from .code import all_codes, score
from .models import MastermindAction, MastermindObservation

Board = tuple[tuple[str, tuple[int, int]], ...]


def scripted(observation: MastermindObservation, rng: Random) -> MastermindAction:
    """Open with two colours in halves (``AABB``, Knuth's opening), then guess the first code, in
    alphabetical order, that would have scored every past guess exactly as it scored."""
    board: Board = tuple((row.guess, (row.exact, row.partial)) for row in observation.guesses)
    colors, pegs = len(observation.colors), observation.pegs
    if not board:
        half = pegs // 2
        return MastermindAction(guess="A" * half + "B" * (pegs - half))
    candidates = consistent(board, colors, pegs)
    if not candidates:
        raise ValueError("no code fits this board; were the scores on it produced by this game?")
    return MastermindAction(guess=candidates[0])


def random(observation: MastermindObservation, rng: Random) -> MastermindAction:
    """A uniformly random code: always a valid guess, rarely a good one."""
    return MastermindAction(guess="".join(rng.choice(observation.colors) for _ in range(observation.pegs)))


@lru_cache(maxsize=4096)
def consistent(board: Board, colors: int, pegs: int) -> tuple[str, ...]:
    """The codes that would have scored every guess on ``board`` as it was scored, in alphabetical order."""
    # Boards grow a row at a time and repeat across episodes, so each is filtered from its cached parent.
    if not board:
        return all_codes(colors, pegs)
    guess, marks = board[-1]
    return tuple(code for code in consistent(board[:-1], colors, pegs) if score(guess, code) == marks)

