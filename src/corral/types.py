"""The typed shapes that travel between an agent, a trainer and an environment."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Action(BaseModel):
    """What an agent does in one step. Subclass it with the environment's action fields.

    Unknown fields are refused so that a typo in an action is a validation error, never a silent no-op.
    """

    model_config = ConfigDict(extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    metadata: dict[str, Any] = Field(default_factory=dict)


class Observation(BaseModel):
    """What the agent sees after a reset or a step. Subclass it with the environment's fields.

    ``metadata`` is free-form data for logging and debugging; corral/1 carries it to the client.
    Reward and termination are not part of the observation: they travel in :class:`StepResult`.
    ``bytes`` fields travel raw with the msgpack codec and as base64url text in JSON.
    """

    model_config = ConfigDict(extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    metadata: dict[str, Any] = Field(default_factory=dict)


class State(BaseModel):
    """The episode's bookkeeping, as returned by ``state``. Environments may add fields."""

    model_config = ConfigDict(extra="allow", ser_json_bytes="base64", val_json_bytes="base64")

    episode_id: str | None = None
    step_count: int = 0


ObsT = TypeVar("ObsT", bound=Observation)


class StepResult(BaseModel, Generic[ObsT]):
    """The outcome of ``reset`` or ``step``, shaped like Gymnasium's.

    ``terminated`` means the episode reached a terminal state of the task; ``truncated`` means it was
    cut short from outside the task (a step limit). ``done`` is derived: ``terminated or truncated``.
    """

    model_config = ConfigDict(extra="forbid")

    observation: ObsT
    reward: float | None = None
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = Field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


class EnvInfo(BaseModel):
    """Who an environment is: served at ``/metadata`` and in the corral/1 hello."""

    name: str
    version: str = "0.1.0"
    description: str = ""
    readme_content: str | None = None
    author: str | None = None
    documentation_url: str | None = None
