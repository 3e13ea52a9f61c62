"""Warm pools: servers started ahead of need, so a fresh isolated session costs milliseconds.

A :class:`WarmPool` keeps ``size`` servers started and ready (each has answered a real session round
trip) and refills in the background. ``acquire`` hands one out; releasing it destroys it and a new one
takes its place. A released server goes back to the pool only when its environment declares that
``reset`` fully restores it (``Environment.reset_restores``) or the pool was made with ``reuse=True``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ..errors import CapacityReached, RuntimeFailed, UsageError
from . import get_runtime
from .base import Runtime, Server, ServerSpec


@dataclass
class PoolStats:
    """Counters of one pool's life (read them to size it)."""

    started: int = 0
    failed: int = 0
    acquired: int = 0
    waited: int = 0
    reused: int = 0
    destroyed: int = 0


class WarmPool:
    """``size`` ready servers of one spec in one runtime.

    ``parallel``: how many servers start at once while refilling. A start that fails is counted in
    ``stats.failed`` and retried with back-off; after ``max_failures`` consecutive failures, ``acquire``
    raises the last error instead of waiting.
    """

    def __init__(self, env: str | ServerSpec, runtime: str | Runtime = "sandbox", *, size: int = 4,
                 parallel: int = 2, reuse: bool | None = None, max_failures: int = 3, **spec_options: Any) -> None:
        if size < 1:
            raise UsageError(f"a warm pool needs size >= 1, not {size}")
        self.runtime = get_runtime(runtime)
        self.spec = env if isinstance(env, ServerSpec) else ServerSpec(env, **spec_options)
        self.size = size
        self.reuse = _declares_reset_restores(self.spec.env) if reuse is None else reuse
        self.max_failures = max_failures
        self.stats = PoolStats()
        self._ready: collections.deque[Server] = collections.deque()
        self._lock = threading.Condition()
        self._starting = 0
        self._failures = 0
        self._last_error: BaseException | None = None
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="corral-pool")
        self._fill()

    # -- handing servers out -----------------------------------------------------------------------

    def acquire(self, timeout: float | None = 60.0) -> Server:
        """A ready server (the caller owns it until :meth:`release`); waits for one up to ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                if self._closed:
                    raise UsageError("the warm pool is closed")
                server = self._take_ready_locked()
                if server is not None:
                    return server
                if self._failures >= self.max_failures and self._last_error is not None:
                    raise RuntimeFailed(f"the warm pool cannot start servers: {self._last_error}") \
                        from self._last_error
                self._fill_locked()
                self.stats.waited += 1
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise CapacityReached(f"no server of the warm pool became ready within {timeout:g} s; "
                                          "make the pool larger or acquire less often")
                self._lock.wait(remaining)

    async def aacquire(self, timeout: float | None = 60.0) -> Server:
        """:meth:`acquire` for async code: returns at once when a server is ready, else waits off the loop."""
        with self._lock:
            server = None if self._closed else self._take_ready_locked()
        return server if server is not None else await asyncio.to_thread(self.acquire, timeout)

    def _take_ready_locked(self) -> Server | None:
        """Pop a live ready server (dropping dead ones) and start a replacement; None when none is ready."""
        while self._ready:
            server = self._ready.popleft()
            if server.alive():
                self.stats.acquired += 1
                self._fill_locked()
                return server
            self._executor.submit(self._destroy, server)
        return None

    def release(self, server: Server) -> None:
        """Give a server back: it is destroyed (in the background) unless the pool may reuse it."""
        with self._lock:
            if self.reuse and not self._closed and server.alive() and len(self._ready) < self.size:
                self.stats.reused += 1
                self._ready.append(server)
                self._lock.notify()
                return
        self._executor.submit(self._destroy, server)

    @contextlib.contextmanager
    def server(self, timeout: float | None = 60.0) -> Iterator[Server]:
        """``with pool.server() as server:`` acquires a server and releases it when the block ends."""
        server = self.acquire(timeout)
        try:
            yield server
        finally:
            self.release(server)

    @property
    def ready(self) -> int:
        """Servers ready right now."""
        with self._lock:
            return len(self._ready)

    def wait_full(self, timeout: float = 60.0) -> None:
        """Block until ``size`` servers are ready (a pool starts filling when it is made)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._ready) < self.size:
                if self._failures >= self.max_failures and self._last_error is not None:
                    raise RuntimeFailed(f"the warm pool cannot start servers: {self._last_error}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeFailed(f"the warm pool did not fill ({len(self._ready)}/{self.size}) in {timeout:g} s")
                self._lock.wait(remaining)

    # -- filling -----------------------------------------------------------------------------------

    def _fill(self) -> None:
        with self._lock:
            self._fill_locked()

    def _fill_locked(self) -> None:
        if self._closed or self._failures >= self.max_failures:
            return
        while len(self._ready) + self._starting < self.size:
            self._starting += 1
            self._executor.submit(self._start_one)

    def _start_one(self) -> None:
        server: Server | None = None
        error: BaseException | None = None
        try:
            if self._failures:
                time.sleep(min(2.0, 0.1 * 2 ** self._failures))
            server = self.runtime.start(self.spec)
        except BaseException as exc:
            error = exc
        with self._lock:
            self._starting -= 1
            if server is not None and not self._closed:
                self.stats.started += 1
                self._failures = 0
                self._ready.append(server)
                server = None
            elif error is not None:
                self.stats.failed += 1
                self._failures += 1
                self._last_error = error
            self._fill_locked()
            self._lock.notify_all()
        if server is not None:  # the pool closed while it started
            self._destroy(server)

    def _destroy(self, server: Server) -> None:
        with contextlib.suppress(Exception):
            server.stop()
        with self._lock:
            self.stats.destroyed += 1

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every server the pool holds (servers handed out stay with their holders). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            ready = list(self._ready)
            self._ready.clear()
            self._lock.notify_all()
        for server in ready:
            self._destroy(server)
        self._executor.shutdown(wait=True)  # lets queued destroys of released servers finish

    def __enter__(self) -> WarmPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<WarmPool {self.spec.env!r} in {self.runtime.name}: {self.ready}/{self.size} ready>"


def _declares_reset_restores(env: str) -> bool:
    """Whether the environment (when it can be imported here) declares that reset restores it fully."""
    from ..envs import resolve

    try:
        return bool(resolve(env).reset_restores)
    except Exception:
        return False
