"""Server settings as one small value object."""

from __future__ import annotations

import resource
from dataclasses import dataclass

#: File descriptors kept back from session capacity for listeners, logs, pipes and the environment's own files.
FD_RESERVE = 256


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def default_capacity() -> int:
    """Sessions one server admits by default: one socket each, within the open-files limit."""
    return max(16, raise_open_files_limit() - FD_RESERVE)


@dataclass(frozen=True)
class ServerConfig:
    """How a server admits, times and expires sessions.

    ``lease_s``: how long a session outlives its dropped connection (the resume window; also the
    expiry of sessions opened over HTTP after their last request). ``idle_timeout_s``: a connected
    session that receives nothing for this long is closed. ``step_timeout_s``: the default and the
    maximum deadline of one reset or step. ``max_wait_s``: the longest a client may ask to queue for a
    slot. ``max_message_bytes``: larger frames are refused with ``FRAME_TOO_LARGE``.
    """

    capacity: int | None = None
    lease_s: float = 60.0
    idle_timeout_s: float = 900.0
    step_timeout_s: float = 300.0
    max_wait_s: float = 30.0
    max_message_bytes: int = 16 * 1024 * 1024
    max_in_flight: int = 1024
    max_sessions_per_connection: int = 4096
    reap_interval_s: float = 1.0
    token: str | None = None
    thread_pool_size: int | None = None
    replay_window: int = 64

    def resolved_capacity(self, concurrent_sessions: bool) -> int:
        if not concurrent_sessions:
            return 1
        return self.capacity if self.capacity is not None else default_capacity()
