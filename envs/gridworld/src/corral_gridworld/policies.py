"""Policies for `corral run --policy NAME` and `corral validate`: ``(observation, rng) -> action``.

``scripted`` reaches the manifest's ``max_reward``: it walks a shortest path to the goal, which every layout
has within the step limit. It reads the grid from the observation and keeps no memory.
"""

from __future__ import annotations

from random import Random

from .layout import GOAL, TRAP, WALL, shortest_path
from .models import GridworldAction, GridworldObservation, Move

#: The moves ``random`` picks from.
MOVES: tuple[Move, ...] = ("up", "down", "left", "right")


def scripted(observation: GridworldObservation, rng: Random) -> GridworldAction:
    """The first move of a breadth-first shortest path from the agent to ``G`` that avoids ``#`` and ``X``."""
    grid = observation.grid
    goal = next(((r, c) for r, row in enumerate(grid) for c, char in enumerate(row) if char == GOAL), None)
    if goal is None:
        raise ValueError("the grid shows no goal G")
    path = shortest_path(observation.position, goal, len(grid), lambda cell: grid[cell[0]][cell[1]] not in (WALL, TRAP))
    if not path:
        raise ValueError("no path from the agent to the goal avoids the walls and traps")
    return GridworldAction(move=path[0])


def random(observation: GridworldObservation, rng: Random) -> GridworldAction:
    """A uniformly random move: it may bump into walls and fall into traps."""
    return GridworldAction(move=rng.choice(MOVES))
