"""An environment that looks around its sandbox, for the zygote tests: what it can list, read, write and reach."""

from __future__ import annotations

import os
import socket
from typing import Any

from pydantic import Field

from corral import Action, Environment, Observation, State, StepResult

#: The pid namespace this module was imported in: a zygote's, when the zygote preloaded it.
IMPORTED_IN = os.readlink("/proc/self/ns/pid")


class LookAction(Action):
    look: str
    path: str = ""


class LookObservation(Observation):
    ok: bool = False
    found: list[str] = Field(default_factory=list)
    detail: str = ""


class SiblingEnv(Environment[LookAction, LookObservation, State]):
    action_type = LookAction
    observation_type = LookObservation

    def __init__(self) -> None:
        self._state = State()
        self._listener: socket.socket | None = None

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        self._state = State(episode_id=episode_id)
        return StepResult(observation=LookObservation(ok=True))

    def step(self, action: LookAction) -> StepResult[Any]:
        self._state.step_count += 1
        try:
            observation = getattr(self, f"_{action.look}")(action.path)
        except OSError as exc:
            observation = LookObservation(ok=False, detail=f"{type(exc).__name__}: {exc}")
        return StepResult(observation=observation)

    @property
    def state(self) -> State:
        return self._state

    def _list(self, path: str) -> LookObservation:
        return LookObservation(ok=True, found=sorted(os.listdir(path)))

    def _read(self, path: str) -> LookObservation:
        with open(path) as handle:
            return LookObservation(ok=True, detail=handle.read())

    def _write(self, path: str) -> LookObservation:
        with open(path, "w") as handle:
            handle.write(str(os.getpid()))
        return LookObservation(ok=True)

    def _listen(self, name: str) -> LookObservation:
        """Listen on an abstract Unix socket (bound to the network namespace, not to a file)."""
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind("\0" + name)
        self._listener.listen()
        return LookObservation(ok=True)

    def _reach(self, name: str) -> LookObservation:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(name if name.startswith("/") else "\0" + name)
        return LookObservation(ok=True)

    def _namespaces(self, path: str) -> LookObservation:
        return LookObservation(ok=True, found=[os.readlink("/proc/self/ns/pid"), IMPORTED_IN])
