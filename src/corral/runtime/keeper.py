"""The keeper: one small process per owner process that removes the owner's containers when it dies.

Containers cannot inherit the owner's lease pipe, so the Docker runtime starts a keeper (on its first
container) whose standard input is the read end of that pipe: :func:`corral.runtime.lease.lease_fd`. The
owner holds the only write end, so when the owner exits or is killed, the keeper reads end-of-file and
removes every container labelled with the owner's lease id, and their folders, then exits. The keeper runs
in its own session, so signals aimed at the owner's process group or terminal do not reach it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

from .lease import LABEL_LEASE, lease_fd, lease_id

_lock = threading.Lock()
_keeper_of: int | None = None  # the pid whose keeper is running


def ensure_keeper() -> None:
    """Start this process's keeper unless it runs already (once per process, again after a fork)."""
    global _keeper_of
    with _lock:
        if _keeper_of == os.getpid():
            return
        read_end = lease_fd()
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            os.posix_spawn(sys.executable, [sys.executable, "-m", "corral.runtime.keeper", lease_id()], env,
                           file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                                         (os.POSIX_SPAWN_DUP2, devnull, 2)],
                           setsid=True)
        finally:
            os.close(devnull)
        _keeper_of = os.getpid()


def remove_owned(lease: str, attempts: int = 20) -> int:
    """Remove every container labelled with ``lease`` (and its folder); return how many were removed."""
    from .docker import connect, remove_container

    for attempt in range(attempts):
        try:
            client = connect()
            containers = client.containers.list(all=True, filters={"label": f"{LABEL_LEASE}={lease}"})
            for container in containers:
                remove_container(container)
            return len(containers)
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m corral.runtime.keeper LEASE_ID < lease-pipe", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    remove_owned(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
