"""What goes over the wire: the move the agent makes, the grid it sees, the episode's state."""

from __future__ import annotations

from typing import Literal

from corral import Action, Observation, State
from pydantic import Field

Move = Literal["up", "down", "left", "right", "stay"]


class GridworldAction(Action):
    move: Move = Field(description="Where to step; a move into a wall or off the grid leaves the agent in place.",
                       examples=["right"])


class GridworldObservation(Observation):
    #: The grid as text, top row first: ``#`` wall, ``.`` floor, ``X`` trap, ``G`` goal, ``A`` the agent.
    grid: list[str]
    #: The agent's (row, column), counted from 0 at the top left.
    position: tuple[int, int]
    steps_left: int
    #: What happened, in words, for text-only agents.
    message: str


class GridworldState(State):
    size: int = 7
    position: tuple[int, int] = (0, 0)
    start: tuple[int, int] = (0, 0)
    goal: tuple[int, int] = (0, 0)
    walls: list[tuple[int, int]] = Field(default_factory=list)
    traps: list[tuple[int, int]] = Field(default_factory=list)
    max_steps: int = 49
    step_cost: float = 0.0
    #: How the episode ended: ``"goal"``, ``"trap"``, ``"step limit"``, or ``None`` while it runs.
    outcome: Literal["goal", "trap", "step limit"] | None = None
