"""Benchmark-only Corral environments. Serve with ``PYTHONPATH=. corral serve benchmarks.envs:BlobEnvironment``.

``BlobEnvironment`` returns a binary observation (default 1 MiB of random bytes) on every step, to compare
the JSON codec with the ``corral.v1+msgpack`` codec. The observation field is a plain ``bytes`` on Corral's
base ``Observation``, whose model config makes ``bytes`` travel as base64url text in JSON (and validates it
back to ``bytes`` on the client) and raw in a msgpack bin field.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, ClassVar

from pydantic import Field

from corral import Action, EnvInfo, Environment, Observation, State, StepResult

MIB = 1 << 20


class BlobAction(Action):
    size: int = Field(default=MIB, ge=0, le=8 * MIB, description="Bytes of observation to return.")


class BlobObservation(Observation):
    data: bytes = b""


class BlobEnvironment(Environment[BlobAction, BlobObservation, State]):
    """Each step returns ``size`` bytes (one random buffer per size, made once per process)."""

    action_type = BlobAction
    observation_type = BlobObservation
    info = EnvInfo(name="blob", version="1.0.0", description="Returns a binary observation of the asked size.")
    inline = True  # returns a prebuilt buffer: no blocking work, so no thread hop (same as echo)

    _buffers: ClassVar[dict[int, bytes]] = {}

    def __init__(self) -> None:
        self._state = State(episode_id=None, step_count=0)

    @classmethod
    def _blob(cls, size: int) -> bytes:
        blob = cls._buffers.get(size)
        if blob is None:
            blob = cls._buffers[size] = os.urandom(size)
        return blob

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        self._state = State(episode_id=episode_id or str(uuid.uuid4()), step_count=0)
        return StepResult(observation=BlobObservation(data=b""), reward=0.0)

    def step(self, action: BlobAction) -> StepResult[Any]:
        self._state.step_count += 1
        return StepResult(observation=BlobObservation(data=self._blob(action.size)), reward=0.0)

    @property
    def state(self) -> State:
        return self._state
