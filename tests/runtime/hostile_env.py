"""An environment that tries to break out of its sandbox or container, for the isolation tests.

Each step names one attempt. An attempt the sandbox stops either raises (the client gets the error) or
reports ``escaped=False``; ``escaped=True`` means the isolation failed.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from corral import Action, Environment, Observation, State, StepResult


class HostileAction(Action):
    attempt: str
    target: str = ""
    amount: int = 0


class HostileObservation(Observation):
    escaped: bool = False
    detail: str = ""


class HostileEnv(Environment[HostileAction, HostileObservation, State]):
    action_type = HostileAction
    observation_type = HostileObservation

    def __init__(self) -> None:
        self._state = State()

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        self._state = State(episode_id=episode_id)
        return StepResult(observation=HostileObservation(detail="ready"))

    def step(self, action: HostileAction) -> StepResult[Any]:
        self._state.step_count += 1
        handler = getattr(self, f"_try_{action.attempt}")
        escaped, detail = handler(action)
        return StepResult(observation=HostileObservation(escaped=escaped, detail=detail))

    @property
    def state(self) -> State:
        return self._state

    # -- attempts ------------------------------------------------------------------------------------

    def _try_echo(self, action: HostileAction) -> tuple[bool, str]:
        return False, action.target

    def _try_connect(self, action: HostileAction) -> tuple[bool, str]:
        host, _, port = action.target.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return True, f"connected to {action.target}"
        except OSError as exc:
            return False, f"{type(exc).__name__}: {exc}"

    def _try_write(self, action: HostileAction) -> tuple[bool, str]:
        try:
            with open(action.target, "w") as handle:
                handle.write("escaped")
            return True, f"wrote {action.target}"
        except OSError as exc:
            return False, f"{type(exc).__name__}: {exc}"

    def _try_read(self, action: HostileAction) -> tuple[bool, str]:
        try:
            with open(action.target) as handle:
                return True, handle.read(100)
        except OSError as exc:
            return False, f"{type(exc).__name__}: {exc}"

    def _try_allocate(self, action: HostileAction) -> tuple[bool, str]:
        block = bytearray(action.amount * 1024 * 1024)  # MemoryError past the address-space limit
        block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page: past the memory cgroup, the OOM killer
        return True, f"allocated {len(block) >> 20} MiB"

    def _try_fork(self, action: HostileAction) -> tuple[bool, str]:
        children: list[int] = []
        try:
            for _ in range(action.amount):
                pid = os.fork()
                if pid == 0:
                    time.sleep(30)
                    os._exit(0)
                children.append(pid)
            return True, f"forked {len(children)} processes"
        except OSError as exc:
            raise RuntimeError(f"fork failed after {len(children)} processes: {exc}") from exc
        finally:
            for pid in children:
                os.kill(pid, 9)
                os.waitpid(pid, 0)

    def _try_spin(self, action: HostileAction) -> tuple[bool, str]:
        deadline = time.monotonic() + action.amount
        while time.monotonic() < deadline:
            pass
        return True, f"spun {action.amount} s"

    def _try_sleep(self, action: HostileAction) -> tuple[bool, str]:
        time.sleep(action.amount)
        return False, "slept"

    def _try_daemon(self, action: HostileAction) -> tuple[bool, str]:
        """Leave a detached process behind (double fork + setsid), named by ``target`` so the test finds it."""
        pid = os.fork()
        if pid == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sleep", ["sleep", action.target])
            os._exit(0)
        os.waitpid(pid, 0)
        return False, "daemon started"
