"""Ownership of started servers: every server belongs to the process that started it (its owner).

Process servers inherit the read end of one pipe per owner process (:func:`lease_fd`); the owner holds the
only write end, so when the owner dies, for any reason, the kernel closes it and each child sees
end-of-file and stops. Containers cannot inherit a descriptor, so the Docker runtime labels them with
:func:`owner_labels` and a keeper process removes them when the owner dies; ``corral gc`` finds any orphan
by the same labels.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

#: Label (and environment variable) keys that mark what Corral started and who owns it.
LABEL_MANAGED = "dev.corral.managed"
LABEL_OWNER_PID = "dev.corral.owner-pid"
LABEL_OWNER_START = "dev.corral.owner-start"
LABEL_LEASE = "dev.corral.lease"

_lock = threading.Lock()
_pipe: tuple[int, int, int] | None = None  # (pid that made it, read end, write end)
_lease_id: tuple[int, str] | None = None


def lease_fd() -> int:
    """The read end of this process's lease pipe, to pass to a child (``pass_fds``)."""
    global _pipe
    with _lock:
        if _pipe is None or _pipe[0] != os.getpid():
            read, write = os.pipe()
            _pipe = (os.getpid(), read, write)
        return _pipe[1]


def lease_id() -> str:
    """A random id for this owner process (stable for its life, new after a fork)."""
    global _lease_id
    with _lock:
        if _lease_id is None or _lease_id[0] != os.getpid():
            _lease_id = (os.getpid(), uuid.uuid4().hex[:16])
        return _lease_id[1]


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (tells a live owner from a reused pid)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    return int(fields[19])


def owner_labels() -> dict[str, str]:
    """Labels that tie a container to this process; :func:`owner_alive` reads them back."""
    pid = os.getpid()
    return {
        LABEL_MANAGED: "1",
        LABEL_OWNER_PID: str(pid),
        LABEL_OWNER_START: str(process_start_time(pid) or 0),
        LABEL_LEASE: lease_id(),
    }


def owner_alive(labels: dict[str, str]) -> bool:
    """Whether the owner named by ``labels`` is still running (same pid and same start time)."""
    try:
        pid = int(labels.get(LABEL_OWNER_PID, "0"))
        start = int(labels.get(LABEL_OWNER_START, "0"))
    except ValueError:
        return False
    if pid <= 0:
        return False
    return process_start_time(pid) == start


def wait_for_exit(pid: int, start: int | None, poll_s: float = 0.2) -> None:
    """Block until process ``pid`` (with that start time) no longer runs."""
    while process_start_time(pid) == start and start is not None:
        time.sleep(poll_s)
