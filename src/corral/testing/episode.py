"""One episode played straight on an environment instance: no server, no client, no sockets."""

from __future__ import annotations

import random
from typing import Any

from ..environment import Environment
from ..errors import UsageError
from ..policy import Policy


def play_locally(env: Environment[Any, Any, Any], policy: Policy, *, seed: int | None = None,
                 step_limit: int = 10_000, **options: Any) -> tuple[float, list[dict[str, Any]]]:
    """Reset ``env`` with ``seed`` and ``options``, then step it with ``policy`` until the episode ends.

    Returns the episode's return and its trace: the first observation, then each step's, as plain dicts.
    The policy's ``rng`` is seeded from ``seed``, so the same seed gives the same trace; comparing two traces
    is how a test proves an episode reproducible. An episode still running after ``step_limit`` steps is
    an error. ``options`` go to ``reset`` as they are (an environment's own ``max_steps`` among them).
    """
    result = env.reset(seed=seed, **options)
    total, trace = 0.0, [result.observation.model_dump()]
    rng = random.Random(seed)
    for _ in range(step_limit):
        if result.done:
            return total, trace
        action = policy(result.observation, rng)
        result = env.step(action if not isinstance(action, dict) else env.action_type.model_validate(action))
        total += result.reward or 0.0
        trace.append(result.observation.model_dump())
    if result.done:
        return total, trace
    raise UsageError(f"the episode was still running after {step_limit} steps; raise step_limit or fix the policy")
