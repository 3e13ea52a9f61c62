"""Transports: how a client opens its WebSocket and moves messages.

A transport is a connect callable, ``connect(url, subprotocols, headers, open_timeout)``, returning a
connection with the contract below. Pass another to ``EnvClient(..., transport=...)`` (a :class:`Connect`) or
``AsyncEnvClient(..., transport=...)`` (an :class:`AsyncConnect`); :mod:`corral.testing` uses this to reach
a server app in the same process. The blocking default, :func:`~corral.client.sync_transport.socket_connect`, drives
``websockets``' sans-I/O protocol on a socket (the caller's thread reads; a watchdog thread answers pings
while the link is idle); the async one is ``websockets.asyncio``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Protocol

from websockets.asyncio.client import connect as _async_connect
from websockets.asyncio.client import unix_connect as _async_unix_connect

from .sync_transport import socket_connect, websockets_connect, websockets_options
from .websocket import UNIX_HANDSHAKE_URL, handshake_error

__all__ = [
    "UNIX_HANDSHAKE_URL",
    "AsyncConnect",
    "AsyncConnection",
    "Connect",
    "Connection",
    "handshake_error",
    "socket_connect",
    "websockets_connect",
    "websockets_connect_async",
]


class Connection(Protocol):
    """One open WebSocket, blocking. An implementation must guarantee:

    - ``subprotocol`` is the subprotocol the server accepted, None if it accepted none;
    - ``send`` delivers one message, text for ``str`` and binary for ``bytes``;
    - ``recv(timeout)`` returns the next message in order; it raises ``TimeoutError`` when none arrives
      within ``timeout`` seconds (None waits forever; 0 returns only a message already received);
    - once the link is closed, by either side, ``send`` and ``recv`` raise ``websockets``'
      ``ConnectionClosed`` (or a subclass), after ``recv`` has returned every message received before;
    - ``close`` is idempotent and never raises for a link that is already gone.
    """

    @property
    def subprotocol(self) -> str | None: ...

    def send(self, message: str | bytes) -> None: ...

    def recv(self, timeout: float | None = None) -> str | bytes: ...

    def close(self) -> None: ...


class AsyncConnection(Protocol):
    """One open WebSocket, async: :class:`Connection`'s guarantees, awaited, with these differences:

    - ``recv`` takes no timeout (the client bounds it with ``asyncio.wait_for``) and is cancellation-safe:
      a cancelled ``recv`` loses no message;
    - ``async for`` yields the messages until the link closes; it ends quietly on a normal close
      (code 1000 or 1001) and raises ``ConnectionClosed`` otherwise.
    """

    @property
    def subprotocol(self) -> str | None: ...

    async def send(self, message: str | bytes) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[str | bytes]: ...


class Connect(Protocol):
    """Open a :class:`Connection` to ``url`` (``ws://``, ``wss://`` or ``unix:///socket/path``), offering
    ``subprotocols`` in order of preference and sending ``headers`` with the handshake, within ``open_timeout`` seconds.

    Failing to open raises a :class:`~corral.errors.CorralError` that says why: :func:`handshake_error`
    translates a refused handshake (the server's status and JSON error body) or an unreachable server.
    """

    def __call__(
        self, url: str, subprotocols: Sequence[str], headers: Mapping[str, str], open_timeout: float
    ) -> Connection: ...


class AsyncConnect(Protocol):
    """:class:`Connect`, awaited: returns an :class:`AsyncConnection`."""

    def __call__(
        self, url: str, subprotocols: Sequence[str], headers: Mapping[str, str], open_timeout: float
    ) -> Awaitable[AsyncConnection]: ...


async def websockets_connect_async(url: str, subprotocols: Sequence[str], headers: Mapping[str, str],
                                   open_timeout: float) -> AsyncConnection:
    """The default :class:`AsyncConnect`: a socket through ``websockets.asyncio``, pinged every 20 s."""
    options = websockets_options(subprotocols, headers, open_timeout)
    try:
        if url.startswith("unix://"):
            return await _async_unix_connect(url[len("unix://"):], UNIX_HANDSHAKE_URL, **options,
                                             ping_interval=20, ping_timeout=20)
        return await _async_connect(url, **options, ping_interval=20, ping_timeout=20)
    except Exception as exc:
        raise handshake_error(url, exc) from exc
