"""Rolling out one episode with a policy: the loop behind ``corral run``, ``corral demo`` and ``corral validate``.

:func:`play` drives any blocking client (:class:`~corral.EnvClient`, or the in-process test client):
reset with the episode's seed, then ask the policy for an action and step until the episode terminates,
is truncated, or reaches ``max_steps``. The policy's random generator is seeded from the episode's seed,
so the same seed and policy give the same episode.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import SeedNotSupported, UsageError
from .policy import Policy
from .types import Action, StepResult


class Client(Protocol):
    """What :func:`play` needs of a client: the blocking ``reset`` and ``step``."""

    def reset(self, *, seed: int | None = None, **options: Any) -> StepResult[Any]: ...

    def step(self, action: Action | dict[str, Any]) -> StepResult[Any]: ...


@dataclass(frozen=True)
class Step:
    """One call of an episode, as ``--record`` writes it: step 0 is the reset (no action)."""

    episode: int
    seed: int | None
    step: int
    action: dict[str, Any] | None
    observation: dict[str, Any]
    reward: float | None
    terminated: bool
    truncated: bool
    #: Seconds the call took, round trip.
    elapsed_s: float

    def record(self) -> dict[str, Any]:
        return {
            "episode": self.episode, "seed": self.seed, "step": self.step, "action": self.action,
            "observation": self.observation, "reward": self.reward, "terminated": self.terminated,
            "truncated": self.truncated, "elapsed_s": self.elapsed_s,
        }


@dataclass
class Episode:
    """How one episode went. ``cut`` means it reached ``max_steps`` before the environment ended it."""

    index: int
    seed: int | None
    total_reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    cut: bool = False
    steps: list[Step] = field(default_factory=list)

    @property
    def step_count(self) -> int:
        return len(self.steps) - 1

    @property
    def step_seconds(self) -> list[float]:
        """Round-trip seconds of every step (the reset not included)."""
        return [step.elapsed_s for step in self.steps[1:]]

    def trajectory(self) -> list[dict[str, Any]]:
        """What the episode showed the agent, without timings: equal for two runs of a deterministic episode."""
        return [{key: value for key, value in step.record().items() if key != "elapsed_s"} for step in self.steps]


def play(client: Client, policy: Policy, *, episode: int = 0, seed: int | None = None, max_steps: int = 200,
         reset_options: dict[str, Any] | None = None, on_step: Callable[[Step], None] | None = None) -> Episode:
    """Play one episode on ``client``'s session with ``policy``; call ``on_step`` after the reset and every step.

    An environment that refuses seeds is reset without one (the episode's ``seed`` is then None).
    """
    if max_steps < 1:
        raise UsageError(f"max_steps must be at least 1, not {max_steps}")
    rng = random.Random(episode if seed is None else seed)
    played = Episode(index=episode, seed=seed)

    def note(action: dict[str, Any] | None, result: StepResult[Any], started: float) -> None:
        elapsed = time.perf_counter() - started
        step = Step(episode=episode, seed=played.seed, step=len(played.steps), action=action,
                    observation=result.observation.model_dump(mode="json"), reward=result.reward,
                    terminated=result.terminated, truncated=result.truncated, elapsed_s=elapsed)
        played.steps.append(step)
        if on_step is not None:
            on_step(step)

    started = time.perf_counter()
    try:
        result = client.reset(seed=seed, **(reset_options or {}))
    except SeedNotSupported:
        if seed is None:
            raise
        played.seed = None
        started = time.perf_counter()
        result = client.reset(**(reset_options or {}))
    note(None, result, started)
    while not result.done:
        if played.step_count >= max_steps:
            played.cut = True
            break
        action = policy(result.observation, rng)
        sent = action.model_dump(mode="json") if isinstance(action, Action) else dict(action)
        started = time.perf_counter()
        result = client.step(action)
        note(sent, result, started)
        played.total_reward += result.reward or 0.0
    played.terminated, played.truncated = result.terminated, result.truncated
    return played
