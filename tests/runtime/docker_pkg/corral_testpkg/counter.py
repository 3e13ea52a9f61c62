"""counter: each step's reward is the number of steps so far; proves a packaged environment is served."""

from __future__ import annotations

import os
from typing import Any

from corral import Action, Environment, Observation, State, StepResult


class CountAction(Action):
    pass


class CountObservation(Observation):
    count: int
    secret: str = ""


class CounterEnv(Environment[CountAction, CountObservation, State]):
    action_type = CountAction
    observation_type = CountObservation

    def __init__(self) -> None:
        self._state = State(step_count=0)

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        self._state = State(episode_id=episode_id, step_count=0)
        return StepResult(observation=CountObservation(count=0, secret=os.environ.get("COUNTER_SECRET", "")))

    def step(self, action: CountAction) -> StepResult[Any]:
        self._state.step_count += 1
        return StepResult(observation=CountObservation(count=self._state.step_count),
                          reward=float(self._state.step_count))

    @property
    def state(self) -> State:
        return self._state
