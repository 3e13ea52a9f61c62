"""OpenEnv's echo environment, served by openenv-core 0.3.0's own server, as our test peer.

Run it with the peer venv's python (``scripts/peer-venv`` prints its path)::

    PEER_PY peer/echo_server.py --port 8123 [--max-sessions 4] [--session-timeout 30]
        [--raise-on TEXT] [--mcp]

The environment logic is that of openenv-core's ``openenv init`` echo template (and of
``envs/echo_env`` without its MCP tools): action ``{"message": str}``, observation
``{"echoed_message", "message_length"}``, reward ``len(message) * 0.1``, never done. Two
additions, both inert by default: ``reset`` honours ``episode_id`` when given, and
``--raise-on TEXT`` makes a step with that exact message raise (to observe EXECUTION_ERROR).
``--mcp`` serves upstream's MCP flavour instead (``envs/echo_env`` today): an ``MCPEnvironment``
with tools ``echo_message`` and ``echo_with_length``, action ``CallToolAction``.
Listens on 127.0.0.1 only; poll ``GET /health`` for readiness.
"""

from __future__ import annotations

import argparse
import functools
from typing import Any
from uuid import uuid4

import uvicorn
from fastmcp import FastMCP
from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.mcp_environment import MCPEnvironment
from openenv.core.env_server.mcp_types import CallToolAction, CallToolObservation
from openenv.core.env_server.types import Action, ConcurrencyConfig, Observation, State
from pydantic import Field


class EchoAction(Action):
    """A message to echo back."""

    message: str = Field(..., description="Message to echo back")


class EchoObservation(Observation):
    """The echoed message and its length."""

    echoed_message: str = Field(default="", description="The echoed message")
    message_length: int = Field(default=0, description="Length of the echoed message")


class EchoEnvironment(Environment[EchoAction, EchoObservation, State]):
    """Echoes each message back; reward is 0.1 per character."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, raise_on: str | None = None) -> None:
        super().__init__()
        self._raise_on = raise_on
        self._state = State(episode_id=str(uuid4()), step_count=0)

    def reset(self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any) -> EchoObservation:
        """Start a new episode (the seed is accepted and ignored, as upstream)."""
        self._state = State(episode_id=episode_id or str(uuid4()), step_count=0)
        return EchoObservation(echoed_message="Echo environment ready!", message_length=0, done=False, reward=0.0)

    def step(self, action: EchoAction, timeout_s: float | None = None, **kwargs: Any) -> EchoObservation:
        """Echo ``action.message``."""
        if self._raise_on is not None and action.message == self._raise_on:
            raise ValueError(f"echo refused message {action.message!r}")
        self._state.step_count += 1
        message = action.message
        return EchoObservation(
            echoed_message=message,
            message_length=len(message),
            done=False,
            reward=len(message) * 0.1,
            metadata={"original_message": message, "step": self._state.step_count},
        )

    @property
    def state(self) -> State:
        """Episode id and step count."""
        return self._state


class EchoMCPEnvironment(MCPEnvironment):
    """Upstream's MCP echo: tools only; ``step`` takes ``list_tools``/``call_tool`` actions.

    Unlike upstream, ``state.step_count`` counts tool-call steps.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self) -> None:
        mcp = FastMCP("echo_env")

        @mcp.tool
        def echo_message(message: str) -> str:
            """Echo back the provided message."""
            return message

        @mcp.tool
        def echo_with_length(message: str) -> dict[str, Any]:
            """Echo back the message with its length."""
            return {"message": message, "length": len(message)}

        super().__init__(mcp)
        self._state = State(episode_id=str(uuid4()), step_count=0)

    def reset(self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any) -> Observation:
        """Start a new episode."""
        self._state = State(episode_id=episode_id or str(uuid4()), step_count=0)
        return Observation(done=False, reward=0.0, metadata={"status": "ready"})

    def step(self, action: Action, timeout_s: float | None = None, **kwargs: Any) -> Observation:
        """Count the step, then route MCP actions as the base class does."""
        self._state.step_count += 1
        return super().step(action, timeout_s=timeout_s, **kwargs)

    async def step_async(self, action: Action, timeout_s: float | None = None, **kwargs: Any) -> Observation:
        """Count the step, then route MCP actions as the base class does."""
        self._state.step_count += 1
        return await super().step_async(action, timeout_s=timeout_s, **kwargs)

    def _step_impl(self, action: Action, timeout_s: float | None = None, **kwargs: Any) -> Observation:
        return Observation(metadata={"error": f"unknown action {type(action).__name__}"})

    @property
    def state(self) -> State:
        """Episode id and step count."""
        return self._state


def main() -> None:
    """Parse flags and serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-sessions", type=int, default=64)
    parser.add_argument("--session-timeout", type=float, default=None)
    parser.add_argument("--raise-on", default=None)
    parser.add_argument("--mcp", action="store_true")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()

    if args.mcp:
        env: Any = EchoMCPEnvironment
        action_cls: type[Action] = CallToolAction
        observation_cls: type[Observation] = CallToolObservation
    else:
        env = functools.partial(EchoEnvironment, raise_on=args.raise_on)
        action_cls, observation_cls = EchoAction, EchoObservation
    app = create_app(
        env,
        action_cls,
        observation_cls,
        env_name="echo_env",
        concurrency_config=ConcurrencyConfig(
            max_concurrent_envs=args.max_sessions, session_timeout=args.session_timeout
        ),
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
