"""echo: returns the message it is sent. The same shapes as OpenEnv's echo environment."""

from __future__ import annotations

import random
import uuid
from typing import Any

from ..environment import Environment
from ..types import Action, EnvInfo, Observation, State, StepResult


class EchoAction(Action):
    message: str


class EchoObservation(Observation):
    echoed_message: str
    message_length: int


class EchoEnvironment(Environment[EchoAction, EchoObservation, State]):
    """Echoes the action's message back; reward is ``len(message) * 0.1``. Episodes never end by themselves."""

    action_type = EchoAction
    observation_type = EchoObservation
    info = EnvInfo(
        name="echo",
        version="1.0.0",
        description="Echoes back the message it is sent; reward is 0.1 per character.",
        readme_content="# echo\n\nSend `{\"message\": \"...\"}`; get `echoed_message` and `message_length` back.",
        author="Corral",
    )
    inline = True  # trivial and non-blocking: no thread hop

    def __init__(self) -> None:
        self._state = State(episode_id=None, step_count=0)

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **options: Any
    ) -> StepResult[EchoObservation]:
        self._state = State(episode_id=episode_id or str(uuid.uuid4()), step_count=0)
        return StepResult(observation=EchoObservation(echoed_message="Echo environment ready!", message_length=0),
                          reward=0.0)

    def step(self, action: EchoAction) -> StepResult[EchoObservation]:
        self._state.step_count += 1
        message = action.message
        return StepResult(
            observation=EchoObservation(echoed_message=message, message_length=len(message)),
            reward=len(message) * 0.1,
        )

    @property
    def state(self) -> State:
        return self._state


def scripted_policy(observation: EchoObservation, rng: random.Random) -> EchoAction:
    return EchoAction(message="hello corral")


def random_policy(observation: EchoObservation, rng: random.Random) -> EchoAction:
    return EchoAction(message="x" * rng.randint(1, 20))
