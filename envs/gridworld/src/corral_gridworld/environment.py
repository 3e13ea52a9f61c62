"""The gridworld environment: walk a seeded grid to the goal around walls and traps."""

from __future__ import annotations

import random
import uuid
from typing import Any

from corral import EnvInfo, Environment, StepResult
from corral.errors import InvalidAction

from .layout import MOVES, Layout, generate
from .models import GridworldAction, GridworldObservation, GridworldState

SIZES = (4, 16)
MAX_WALL_DENSITY = 0.4
MAX_STEP_COST = 0.1


class GridworldEnvironment(Environment[GridworldAction, GridworldObservation, GridworldState]):
    """Reward +1.0 and ``terminated`` on reaching the goal; -1.0 and ``terminated`` on stepping into a trap;
    ``truncated`` after ``max_steps`` moves. Every other move costs ``step_cost`` (default 0), so the best
    return is 1.0 by default.

    The seed fixes the layout; every layout's goal is reachable without crossing a trap, within the step
    limit. Reset options: ``size`` (default 7, 4 to 16), ``wall_density`` (default 0.2, 0 to 0.4), ``traps``
    (default ``size // 2``, 0 to ``size``), ``max_steps`` (default ``size * size``), ``step_cost`` (default 0,
    0 to 0.1).
    """

    action_type = GridworldAction
    observation_type = GridworldObservation
    state_type = GridworldState
    info = EnvInfo(name="gridworld", version="0.1.0",
                   description="Walk a seeded grid to the goal around walls and traps.", author="Corral")
    #: Every call is quick and never blocks, so it may run on the server's event loop.
    inline = True

    def __init__(self) -> None:
        self._state = GridworldState()
        self._layout = Layout(7, frozenset(), frozenset(), (0, 0), (0, 0))

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **options: Any
    ) -> StepResult[GridworldObservation]:
        unknown = set(options) - {"size", "wall_density", "traps", "max_steps", "step_cost"}
        if unknown:
            raise _invalid(f"unknown reset option(s) {', '.join(sorted(unknown))}; gridworld takes size, "
                           "wall_density, traps, max_steps and step_cost", "options")
        size = _integer(options, "size", 7, *SIZES)
        traps = _integer(options, "traps", size // 2, 0, size)
        max_steps = _integer(options, "max_steps", size * size, 1, 10_000)
        wall_density = _number(options, "wall_density", 0.2, MAX_WALL_DENSITY)
        step_cost = _number(options, "step_cost", 0.0, MAX_STEP_COST)
        try:
            layout = generate(random.Random(seed), size, wall_density, traps, max_steps)
        except ValueError as exc:
            raise _invalid(str(exc), "options") from exc
        self._layout = layout
        self._state = GridworldState(
            episode_id=episode_id or str(uuid.uuid4()), size=size, position=layout.start, start=layout.start,
            goal=layout.goal, walls=sorted(layout.walls), traps=sorted(layout.traps), max_steps=max_steps,
            step_cost=step_cost,
        )
        return StepResult(observation=self._observe(
            f"Reach G in at most {max_steps} moves; avoid the traps X. Walls # block moves."))

    def step(self, action: GridworldAction) -> StepResult[GridworldObservation]:
        state, layout = self._state, self._layout
        state.step_count += 1
        dr, dc = MOVES[action.move]
        row, col = state.position[0] + dr, state.position[1] + dc
        if not (0 <= row < layout.size and 0 <= col < layout.size) or (row, col) in layout.walls:
            message = f"Bumped into {'a wall' if (row, col) in layout.walls else 'the edge'}; you stay put."
        else:
            state.position = (row, col)
            message = f"Moved {action.move}." if action.move != "stay" else "Stayed put."
        if state.position == layout.goal:
            state.outcome = "goal"
            return StepResult(observation=self._observe("Reached the goal."), reward=1.0, terminated=True)
        if state.position in layout.traps:
            state.outcome = "trap"
            return StepResult(observation=self._observe("Fell into a trap."), reward=-1.0, terminated=True)
        truncated = state.step_count >= state.max_steps
        if truncated:
            state.outcome = "step limit"
            message += " Out of moves."
        return StepResult(observation=self._observe(message), reward=-state.step_cost, truncated=truncated)

    @property
    def state(self) -> GridworldState:
        return self._state

    def _observe(self, message: str) -> GridworldObservation:
        state = self._state
        return GridworldObservation(grid=self._layout.rows(state.position), position=state.position,
                                    steps_left=state.max_steps - state.step_count, message=message)


def _integer(options: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(f"reset option {name} must be an integer from {low} to {high}, not {value!r}", name)
    return value


def _number(options: dict[str, Any], name: str, default: float, high: float) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
        raise _invalid(f"reset option {name} must be a number from 0 to {high}, not {value!r}", name)
    return float(value)


def _invalid(message: str, field: str) -> InvalidAction:
    return InvalidAction(message, details={"errors": [{"type": "value_error", "loc": [field], "msg": message}]})
