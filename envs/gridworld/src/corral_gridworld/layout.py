"""Seeded layouts: walls, traps, a start and a goal, with the goal always reachable around the traps."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Cell = tuple[int, int]

WALL, FLOOR, TRAP, GOAL, AGENT = "#", ".", "X", "G", "A"
#: Moves as (row, column) offsets, in the order the shortest-path search tries them.
MOVES: dict[str, Cell] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1), "stay": (0, 0)}
#: Attempts at a random layout before giving up (each succeeds far more often than not at the allowed densities).
ATTEMPTS = 1000


@dataclass(frozen=True)
class Layout:
    size: int
    walls: frozenset[Cell]
    traps: frozenset[Cell]
    start: Cell
    goal: Cell

    def rows(self, agent: Cell) -> list[str]:
        """The grid as text, one string per row: ``#`` wall, ``.`` floor, ``X`` trap, ``G`` goal, ``A`` agent."""
        def char(cell: Cell) -> str:
            if cell == agent:
                return AGENT
            if cell == self.goal:
                return GOAL
            if cell in self.traps:
                return TRAP
            return WALL if cell in self.walls else FLOOR
        return ["".join(char((r, c)) for c in range(self.size)) for r in range(self.size)]


def generate(rng: random.Random, size: int, wall_density: float, traps: int, max_steps: int) -> Layout:
    """A layout whose goal the start reaches, around walls and traps, in at least ``min(size // 2, max_steps)``
    and at most ``max_steps`` moves. Draws only from ``rng``, so one seed gives one layout."""
    shortest_wanted = min(size // 2, max_steps)
    for _ in range(ATTEMPTS):
        cells = [(r, c) for r in range(size) for c in range(size)]
        walls = {cell for cell in cells if rng.random() < wall_density}
        free = [cell for cell in cells if cell not in walls]
        if len(free) < traps + 2:
            continue
        start, goal, *trapped = rng.sample(free, traps + 2)
        walkable = frozenset(free) - set(trapped)
        path = shortest_path(start, goal, size, walkable.__contains__)
        if path is not None and shortest_wanted <= len(path) <= max_steps:
            return Layout(size, frozenset(walls), frozenset(trapped), start, goal)
    raise ValueError(f"no {size}x{size} layout with {traps} traps and wall density {wall_density} has a goal "
                     f"within {max_steps} steps; lower the density or the traps, or raise max_steps")


def shortest_path(start: Cell, goal: Cell, size: int, open_: Callable[[Cell], bool]) -> list[str] | None:
    """The moves of a shortest path from ``start`` to ``goal`` (breadth-first, trying moves in ``MOVES``
    order, so the answer is deterministic); ``None`` when the goal cannot be reached."""
    came: dict[Cell, tuple[Cell, str] | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            moves: list[str] = []
            step = came[cell]
            while step is not None:
                cell, move = step
                moves.append(move)
                step = came[cell]
            return moves[::-1]
        for move, nxt in _neighbours(cell, size):
            if nxt not in came and open_(nxt):
                came[nxt] = (cell, move)
                queue.append(nxt)
    return None


def _neighbours(cell: Cell, size: int) -> Iterable[tuple[str, Cell]]:
    for move, (dr, dc) in MOVES.items():
        if move == "stay":
            continue
        r, c = cell[0] + dr, cell[1] + dc
        if 0 <= r < size and 0 <= c < size:
            yield move, (r, c)
