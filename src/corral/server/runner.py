"""Drive one environment instance with a single async surface, whatever its kind.

Async environments are awaited on the loop; ``inline`` sync environments are called on the loop;
other sync environments go through the server's :class:`~corral.concurrency.ThreadPool`, or their own
:class:`~corral.concurrency.DedicatedThread` when they declare ``thread_affinity``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..concurrency import DedicatedThread, ThreadPool
from ..environment import AnyEnvironment, AsyncEnvironment, EnvClass
from ..types import Action, State, StepResult

T = TypeVar("T")


class EnvRunner:
    """Owns one environment instance; ``close`` is idempotent."""

    __slots__ = ("_closed", "_pool", "_thread", "env")

    def __init__(self, env: AnyEnvironment, thread: DedicatedThread | None, pool: ThreadPool) -> None:
        self.env = env
        self._thread = thread
        self._pool = pool
        self._closed = False

    @classmethod
    async def create(cls, env_cls: EnvClass, pool: ThreadPool, **kwargs: Any) -> EnvRunner:
        """Construct the environment where it will live (its own thread when it needs one)."""
        if issubclass(env_cls, AsyncEnvironment) or env_cls.inline:
            return cls(env_cls(**kwargs), None, pool)
        if env_cls.thread_affinity:
            thread = DedicatedThread()
            try:
                env = await thread.run(env_cls, **kwargs)
            except BaseException:
                thread.close()
                raise
            return cls(env, thread, pool)
        return cls(await pool.run(env_cls, **kwargs), None, pool)

    @property
    def preemptible(self) -> bool:
        """Whether a deadline can cut a call short (inline calls run to completion on the loop)."""
        return isinstance(self.env, AsyncEnvironment) or not self.env.inline

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._thread is not None:
            return await self._thread.run(fn, *args, **kwargs)
        return await self._pool.run(fn, *args, **kwargs)

    async def reset(self, **kwargs: Any) -> StepResult[Any]:
        env = self.env
        if isinstance(env, AsyncEnvironment):
            return await env.reset(**kwargs)
        if env.inline:
            return env.reset(**kwargs)
        return await self._call(env.reset, **kwargs)

    async def step(self, action: Action) -> StepResult[Any]:
        env = self.env
        if isinstance(env, AsyncEnvironment):
            return await env.step(action)
        if env.inline:
            return env.step(action)
        return await self._call(env.step, action)

    async def state(self) -> State:
        env = self.env
        if isinstance(env, AsyncEnvironment) or env.inline:
            current: State = env.state
            return current
        current = await self._call(lambda: env.state)
        return current

    async def call(self, method: str, arguments: dict[str, Any]) -> Any:
        """Call a tool method of the environment by attribute name."""
        fn = getattr(self.env, method)
        if isinstance(self.env, AsyncEnvironment):
            result = fn(**arguments)
            return await result if hasattr(result, "__await__") else result
        if self.env.inline:
            return fn(**arguments)
        return await self._call(fn, **arguments)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        env = self.env
        try:
            if isinstance(env, AsyncEnvironment):
                await env.close()
            elif env.inline:
                env.close()
            else:
                await self._call(env.close)
        finally:
            if self._thread is not None:
                self._thread.close()
