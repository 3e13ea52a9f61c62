"""guess: find a secret number with higher/lower hints. Seeded, with a terminal state and a step limit."""

from __future__ import annotations

import random
import uuid
from typing import Any, Literal

from pydantic import Field

from ..environment import Environment
from ..tools import tool
from ..types import Action, EnvInfo, Observation, State, StepResult


class GuessAction(Action):
    guess: int = Field(ge=0, le=1_000_000)


class GuessObservation(Observation):
    hint: Literal["start", "higher", "lower", "correct"]
    low: int
    high: int
    attempts_left: int


class GuessState(State):
    low: int = 1
    high: int = 100
    attempts_left: int = 0
    found: bool = False


class GuessEnvironment(Environment[GuessAction, GuessObservation, GuessState]):
    """Guess a secret integer in ``[low, high]``.

    Reward: ``+1`` for the right guess (``terminated``), ``-0.05`` per wrong guess; running out of
    attempts ends the episode with ``truncated``. Options: ``high`` (default 100), ``max_attempts``
    (default 8). The seed fixes the secret.
    """

    action_type = GuessAction
    observation_type = GuessObservation
    state_type = GuessState
    info = EnvInfo(name="guess", version="1.0.0", description="Find a secret number with higher/lower hints.",
                   author="Corral")
    inline = True

    def __init__(self) -> None:
        self._state = GuessState()
        self._secret = 0

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **options: Any
    ) -> StepResult[GuessObservation]:
        high = int(options.get("high", 100))
        attempts = int(options.get("max_attempts", 8))
        if high < 1 or attempts < 1:
            raise ValueError("options 'high' and 'max_attempts' must be >= 1")
        self._secret = random.Random(seed).randint(1, high)
        self._state = GuessState(episode_id=episode_id or str(uuid.uuid4()), high=high, attempts_left=attempts)
        return StepResult(observation=self._observe("start"))

    def step(self, action: GuessAction) -> StepResult[GuessObservation]:
        s = self._state
        s.step_count += 1
        s.attempts_left -= 1
        if action.guess == self._secret:
            s.found = True
            s.low = s.high = action.guess
            return StepResult(observation=self._observe("correct"), reward=1.0, terminated=True)
        if action.guess < self._secret:
            s.low = max(s.low, action.guess + 1)
            hint: Literal["higher", "lower"] = "higher"
        else:
            s.high = min(s.high, action.guess - 1)
            hint = "lower"
        return StepResult(observation=self._observe(hint), reward=-0.05, truncated=s.attempts_left <= 0)

    def _observe(self, hint: Literal["start", "higher", "lower", "correct"]) -> GuessObservation:
        s = self._state
        return GuessObservation(hint=hint, low=s.low, high=s.high, attempts_left=s.attempts_left)

    @property
    def state(self) -> GuessState:
        return self._state

    @tool
    def range_size(self) -> int:
        """How many numbers are still possible."""
        return self._state.high - self._state.low + 1


def bisect_policy(observation: GuessObservation) -> GuessAction:
    """The scripted policy that always wins within ``ceil(log2(high))`` guesses."""
    return GuessAction(guess=(observation.low + observation.high) // 2)


def scripted_policy(observation: GuessObservation, rng: random.Random) -> GuessAction:
    return bisect_policy(observation)


def random_policy(observation: GuessObservation, rng: random.Random) -> GuessAction:
    return GuessAction(guess=rng.randint(observation.low, max(observation.low, observation.high)))
