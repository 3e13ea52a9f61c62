"""The blob environment written for openenv-core 0.3.0 (run with the peer venv's python).

OpenEnv's WebSocket replies go through pydantic's JSON mode, which cannot carry arbitrary ``bytes``; an
OpenEnv author has to ship binary data as base64 text, so the observation field here is a base64 ``str``
(the client decodes it). Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import os
from typing import Any
from uuid import uuid4

import uvicorn
from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import Action, ConcurrencyConfig, Observation, State
from pydantic import Field

MIB = 1 << 20
_BLOBS: dict[int, str] = {}


class BlobAction(Action):
    size: int = Field(default=MIB, ge=0, le=8 * MIB)


class BlobObservation(Observation):
    data: str = Field(default="", description="base64 of the binary observation")


class BlobEnvironment(Environment[BlobAction, BlobObservation, State]):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        super().__init__()
        self._state = State(episode_id=str(uuid4()), step_count=0)

    def reset(self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any) -> BlobObservation:
        self._state = State(episode_id=episode_id or str(uuid4()), step_count=0)
        return BlobObservation(data="", done=False, reward=0.0)

    def step(self, action: BlobAction, timeout_s: float | None = None, **kwargs: Any) -> BlobObservation:
        self._state.step_count += 1
        blob = _BLOBS.get(action.size)
        if blob is None:
            blob = _BLOBS[action.size] = base64.b64encode(os.urandom(action.size)).decode()
        return BlobObservation(data=blob, done=False, reward=0.0)

    @property
    def state(self) -> State:
        return self._state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-sessions", type=int, default=64)
    args = parser.parse_args()
    app = create_app(
        BlobEnvironment,
        BlobAction,
        BlobObservation,
        env_name="blob_env",
        concurrency_config=ConcurrencyConfig(max_concurrent_envs=args.max_sessions),
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
