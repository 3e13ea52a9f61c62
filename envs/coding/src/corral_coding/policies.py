"""Policies for `corral run --policy NAME` and `corral validate`: ``(observation, rng) -> action``.

``scripted`` submits the task's reference solution, so it solves every task on its first attempt and
reaches the manifest's ``max_reward`` (1.0). ``random`` submits some task's reference solution (right
now and then, by chance) or a stub: a baseline that exercises failing tests.
"""

from __future__ import annotations

from random import Random

from .models import CodingAction, CodingObservation
from .tasks import load_tasks


def scripted(observation: CodingObservation, rng: Random) -> CodingAction:
    task = next(t for t in load_tasks() if t.id == observation.task_id)
    return CodingAction(code=task.solution)


def random(observation: CodingObservation, rng: Random) -> CodingAction:
    tasks = load_tasks()
    if rng.random() < 0.5:
        return CodingAction(code=rng.choice(tasks).solution)
    name = observation.signature.removeprefix("def ").partition("(")[0] or "main"
    return CodingAction(code=f"def {name}(*args):\n    return None\n")
