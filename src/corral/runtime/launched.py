"""Clients that own their server: ``EnvClient.launch(...)`` and ``AsyncEnvClient.launch(...)``.

The client is the handle: closing it (or leaving its ``with`` block) closes the session and then stops the
server, in whichever runtime it ran. With ``pool=``, the server comes from a warm pool and goes back to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .base import Runtime, Server

if TYPE_CHECKING:
    from ..client import AsyncEnvClient, EnvClient
    from .pool import WarmPool

ClientT = TypeVar("ClientT", bound="EnvClient[Any, Any]")
AsyncClientT = TypeVar("AsyncClientT", bound="AsyncEnvClient[Any, Any]")

_owning: dict[type, type] = {}


def _start(env: str | None, runtime: str | Runtime, pool: WarmPool | None,
           server_options: dict[str, Any]) -> tuple[Server, WarmPool | None]:
    from ..errors import UsageError
    from . import launch

    if pool is not None:
        if env is not None and env != pool.spec.env:
            raise UsageError(f"launch({env!r}, pool=...) names another environment than the pool's "
                             f"({pool.spec.env!r}); pass env=None to use the pool's")
        return pool.acquire(), pool
    if env is None:
        raise UsageError("launch() needs an environment (a built-in name, 'module:Class' or an image) or pool=")
    return launch(env, runtime, **server_options), None


def _release(server: Server, pool: WarmPool | None) -> None:
    if pool is not None:
        pool.release(server)
    else:
        server.stop()


def _client_options(server: Server, options: dict[str, Any]) -> dict[str, Any]:
    options = dict(options)
    options.setdefault("token", server.token)
    options.setdefault("resume", False)  # a local socket does not blip: a lost link means a dead server
    return options


def launch_client(cls: type[ClientT], env: str | None, runtime: str | Runtime, pool: WarmPool | None,
                  server_options: dict[str, Any], client_options: dict[str, Any]) -> ClientT:
    """Start (or take from ``pool``) a server and return a ``cls`` client that stops it when closed."""
    server, owner = _start(env, runtime, pool, server_options)
    try:
        client: ClientT = _owning_client(cls, server, owner, client_options)
        return client
    except BaseException:
        _release(server, owner)
        raise


def _owning_client(cls: type[Any], server: Server, owner: WarmPool | None, options: dict[str, Any]) -> Any:
    """A ``cls`` client of ``server`` that stops (or gives back to ``owner``) the server when it closes."""
    client = _owning_class(cls)(server.url, **_client_options(server, options))
    client.server = server
    client._launch_pool = owner
    return client


def _owning_class(cls: type[Any]) -> type[Any]:
    owning = _owning.get(cls)
    if owning is not None:
        return owning

    def close(self: Any) -> Any:
        try:
            cls.close(self)
        finally:
            if getattr(self, "server", None) is not None:
                server, self.server = self.server, None
                _release(server, self._launch_pool)

    async def aclose(self: Any) -> None:
        try:
            await cls.close(self)
        finally:
            if getattr(self, "server", None) is not None:
                server, self.server = self.server, None
                await asyncio.to_thread(_release, server, self._launch_pool)

    is_async = asyncio.iscoroutinefunction(cls.close)
    owning = type(f"Launched{cls.__name__}", (cls,), {
        "__doc__": f"A {cls.__name__} that stops its server when it closes.",
        "__module__": cls.__module__,
        "close": aclose if is_async else close,
        "server": None,
        "_launch_pool": None,
    })
    _owning[cls] = owning
    return owning


class AsyncLaunch(Generic[AsyncClientT]):
    """What ``AsyncEnvClient.launch(...)`` returns: ``await`` it for the client, or ``async with`` it."""

    def __init__(self, cls: type[AsyncClientT], env: str | None, runtime: str | Runtime, pool: WarmPool | None,
                 server_options: dict[str, Any], client_options: dict[str, Any]) -> None:
        self._args = (cls, env, runtime, pool, server_options, client_options)
        self._client: AsyncClientT | None = None

    async def _launch(self) -> AsyncClientT:
        cls, env, runtime, pool, server_options, client_options = self._args
        if pool is not None and env in (None, pool.spec.env):
            server: Server = await pool.aacquire()
            owner: WarmPool | None = pool
        else:
            server, owner = await asyncio.to_thread(_start, env, runtime, pool, server_options)
        try:
            client: AsyncClientT = _owning_client(cls, server, owner, client_options)
        except BaseException:
            await asyncio.to_thread(_release, server, owner)
            raise
        return client

    def __await__(self) -> Generator[Any, None, AsyncClientT]:
        return self._launch().__await__()

    async def __aenter__(self) -> AsyncClientT:
        self._client = await self._launch()
        await self._client.__aenter__()
        return self._client

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._client is not None:
            await self._client.__aexit__(exc_type, exc, tb)
