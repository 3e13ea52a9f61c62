"""The one way blocking work leaves the event loop.

Sync environments run on a bounded thread pool shared by every session of a server (never a thread
per session). An environment that declares ``thread_affinity`` gets one :class:`DedicatedThread` for
its whole life instead, because some libraries (Playwright's sync API) must always be called from
the thread that created them.
"""

from __future__ import annotations

import asyncio
import functools
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def default_pool_size() -> int:
    return min(64, (os.cpu_count() or 1) * 8)


class ThreadPool:
    """A bounded pool for blocking calls; ``run`` awaits one call on it."""

    def __init__(self, max_workers: int | None = None, name: str = "corral-env") -> None:
        self.max_workers = max_workers or default_pool_size()
        self._executor = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs) if kwargs else functools.partial(fn, *args)
        return await loop.run_in_executor(self._executor, call)

    def close(self) -> None:
        """Stop accepting work. Calls already running finish on their own threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class DedicatedThread:
    """One thread that runs every call handed to it, in order, until closed."""

    def __init__(self, name: str = "corral-env-affine") -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._closed = False
        self._thread.start()

    def _loop(self) -> None:
        while (item := self._calls.get()) is not None:
            call, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._closed:
            raise RuntimeError("dedicated thread is closed")
        future: Future[T] = Future()
        self._calls.put((functools.partial(fn, *args, **kwargs), future))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Let queued calls finish, then end the thread. Idempotent."""
        if not self._closed:
            self._closed = True
            self._calls.put(None)
