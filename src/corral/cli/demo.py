"""``corral demo``: start a built-in environment's server in a sandbox (or another runtime), roll out episodes,
summarise. The loop is ``corral run``'s."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ..envs import BUILTINS
from ..errors import UsageError
from .run import run_episodes, start_server

#: echo's episodes never end by themselves.
ECHO_STEPS = 16

__all__ = ["ECHO_STEPS", "run_demo", "start_server"]


def run_demo(*, env: str, episodes: int, policy: str, seed: int, console: Console,
             runtime: str = "sandbox") -> dict[str, Any]:
    if env not in BUILTINS:
        raise UsageError(f"demo supports the built-in environments {sorted(BUILTINS)}, not {env!r}; "
                         "'corral run' rolls out any environment")
    return run_episodes(env, episodes=episodes, policy=policy, seed=seed, runtime=runtime, console=console,
                        max_steps=ECHO_STEPS if env == "echo" else None, title="corral demo", sandbox_fallback=True)
