"""Tiny environments for the testing-tools tests: one that keeps the contract, and ways to break it."""

from __future__ import annotations

import asyncio
import random
from typing import Any, ClassVar, Literal

from corral import Action, AsyncEnvironment, EnvInfo, Environment, Observation, State, StepResult


class FlipAction(Action):
    call: Literal["heads", "tails"] = "heads"


class FlipObservation(Observation):
    last: str | None = None
    score: int = 0


class FlipEnv(Environment[FlipAction, FlipObservation, State]):
    """Call a seeded coin flip; reward 1 per right call. Keeps the whole contract."""

    action_type = FlipAction
    observation_type = FlipObservation
    info = EnvInfo(name="flip")
    closed: ClassVar[int] = 0

    def __init__(self) -> None:
        self._rng = random.Random()
        self._state = State()
        self._score = 0
        self._closed = False

    def _seed(self, seed: int | None) -> random.Random:
        return random.Random(seed)

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        self._rng = self._seed(seed)
        self._state = State(episode_id=episode_id or "flip", step_count=0)
        self._score = 0
        return StepResult(observation=FlipObservation())

    def step(self, action: FlipAction) -> StepResult[Any]:
        self._state.step_count += 1
        side = self._rng.choice(["heads", "tails"])
        self._score += side == action.call
        return StepResult(observation=FlipObservation(last=side, score=self._score), reward=float(side == action.call))

    @property
    def state(self) -> State:
        return self._state

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            type(self).closed += 1


class AsyncFlipEnv(AsyncEnvironment[FlipAction, FlipObservation, State]):
    """:class:`FlipEnv` written with ``async def``."""

    action_type = FlipAction
    observation_type = FlipObservation
    info = EnvInfo(name="async-flip")

    def __init__(self) -> None:
        self._sync = FlipEnv()

    async def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        await asyncio.sleep(0)
        return self._sync.reset(seed, episode_id, **options)

    async def step(self, action: FlipAction) -> StepResult[Any]:
        await asyncio.sleep(0)
        return self._sync.step(action)

    @property
    def state(self) -> State:
        return self._sync.state

    async def close(self) -> None:
        self._sync.close()


class SlowAction(Action):
    delay: float = 0.0
    fail: bool = False


class SlowEnv(AsyncEnvironment[SlowAction, FlipObservation, State]):
    """Sleeps ``delay`` seconds in ``step``; raises when asked to. Refuses seeds."""

    action_type = SlowAction
    observation_type = FlipObservation
    info = EnvInfo(name="slow")
    seedable = False

    def __init__(self) -> None:
        self._state = State()

    async def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        self._state = State(episode_id=episode_id or "slow")
        return StepResult(observation=FlipObservation())

    async def step(self, action: SlowAction) -> StepResult[Any]:
        if action.fail:
            raise RuntimeError("broken on purpose")
        await asyncio.sleep(action.delay)
        self._state.step_count += 1
        return StepResult(observation=FlipObservation(), reward=0.0)

    @property
    def state(self) -> State:
        return self._state
