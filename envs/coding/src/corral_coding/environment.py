"""The coding environment: write Python that passes a task's tests; every submission runs in its own sandbox."""

from __future__ import annotations

import random
import uuid
from typing import Any

from corral import EnvInfo, Environment, StepResult
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .executor import ExecLimits, Executor
from .models import CodingAction, CodingObservation, CodingState
from .tasks import Task, grade, load_tasks


class CodingOptions(BaseModel):
    """Reset options, each within a safe maximum."""

    model_config = ConfigDict(extra="forbid")

    #: A task id; by default the seed picks ``tasks[seed % len(tasks)]`` (no seed: a random task).
    task: str | None = None
    max_attempts: int = Field(default=5, ge=1, le=100)
    time_limit_s: float = Field(default=5.0, gt=0, le=30)
    memory_mb: int = Field(default=256, ge=64, le=2048)
    processes: int = Field(default=16, ge=4, le=128)
    output_kib: int = Field(default=64, ge=1, le=1024)
    #: Say what a failed test expected (an agent could then hard-code the answers).
    reveal_expected: bool = False

    def limits(self) -> ExecLimits:
        return ExecLimits(time_s=self.time_limit_s, memory_mb=self.memory_mb, processes=self.processes,
                          output_kib=self.output_kib)


class CodingEnvironment(Environment[CodingAction, CodingObservation, CodingState]):
    """Each step submits a complete Python module; it runs in a fresh bubblewrap sandbox and the task's tests
    call its function (or compare what it printed). Reward: the gain in the fraction of tests passed over the
    episode's best so far, so an episode's return is the best fraction reached (1.0 when solved) and resubmitting
    the same partial answer earns nothing. ``terminated`` when every test passes; ``truncated`` after
    ``max_attempts`` submissions. Reset options: see :class:`CodingOptions`.
    """

    action_type = CodingAction
    observation_type = CodingObservation
    state_type = CodingState
    info = EnvInfo(name="coding", version="0.1.0",
                   description="Write Python that passes unit tests; runs in a per-execution sandbox.")

    def __init__(self) -> None:
        self._executor = Executor()
        self._tasks = load_tasks()
        self._state = CodingState()
        self._options = CodingOptions()
        self._task: Task = self._tasks[0]
        self._seed = 0

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **options: Any
    ) -> StepResult[CodingObservation]:
        try:
            chosen = CodingOptions.model_validate(options)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"bad reset options ({problems}); the options are {', '.join(CodingOptions.model_fields)}"
                             ) from exc
        self._task = self._pick(seed, chosen.task)
        self._options = chosen
        # The submission's str hashes (so set order) and `random` follow the seed too: a seeded episode replays.
        self._seed = seed if seed is not None else random.randrange(2**32)
        self._state = CodingState(episode_id=episode_id or str(uuid.uuid4()), task_id=self._task.id,
                                  max_attempts=chosen.max_attempts, tests_total=self._task.total)
        return StepResult(observation=self._observe())

    def step(self, action: CodingAction) -> StepResult[CodingObservation]:
        state, task = self._state, self._task
        state.step_count += 1
        state.attempts += 1
        run = self._executor.run(action.code, function=task.function, calls=[case.args for case in task.tests],
                                 limits=self._options.limits(), seed=self._seed)
        cases = grade(task, run, reveal_expected=self._options.reveal_expected)
        passed = sum(case.passed for case in cases)
        reward = max(passed - state.best_passed, 0) / task.total
        state.best_passed = max(state.best_passed, passed)
        state.solved = passed == task.total
        observation = self._observe().model_copy(update={
            "stdout": run.stdout, "stderr": run.stderr, "exit_code": run.exit_code, "timed_out": run.timed_out,
            "limit": run.limit, "output_truncated": run.output_truncated, "tests": cases, "tests_passed": passed})
        return StepResult(observation=observation, reward=reward, terminated=state.solved,
                          truncated=not state.solved and state.attempts >= state.max_attempts)

    @property
    def state(self) -> CodingState:
        return self._state

    def close(self) -> None:
        self._executor.close()

    def _pick(self, seed: int | None, task_id: str | None) -> Task:
        if task_id is not None:
            for task in self._tasks:
                if task.id == task_id:
                    return task
            raise ValueError(f"no task {task_id!r}; the tasks are {', '.join(t.id for t in self._tasks)}")
        index = seed % len(self._tasks) if seed is not None else random.randrange(len(self._tasks))
        return self._tasks[index]

    def _observe(self) -> CodingObservation:
        state, task = self._state, self._task
        return CodingObservation(task_id=task.id, prompt=task.prompt, signature=task.signature,
                                 attempt=state.attempts, attempts_left=state.max_attempts - state.attempts,
                                 tests_total=task.total, best_passed=state.best_passed)
