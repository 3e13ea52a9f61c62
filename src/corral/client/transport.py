"""Transports: how a client opens its WebSocket and moves messages.

A transport is a connect callable, ``connect(url, subprotocols, headers, open_timeout)``, returning a
connection with the contract below. Pass another to ``EnvClient(..., transport=...)`` (a :class:`Connect`) or
``AsyncEnvClient(..., transport=...)`` (an :class:`AsyncConnect`); :mod:`corral.testing` uses this to reach
a server app in the same process. The defaults drive ``websockets``' sans-I/O protocol on a socket:
:func:`~corral.client.sync_transport.socket_connect` (the caller's thread reads; a watchdog thread answers
pings while the link is idle) and :func:`~corral.client.async_transport.protocol_connect` (messages are handed
to the client from ``data_received``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from .async_transport import protocol_connect
from .sync_transport import socket_connect, websockets_connect
from .websocket import UNIX_HANDSHAKE_URL, handshake_error

__all__ = [
    "UNIX_HANDSHAKE_URL",
    "AsyncConnect",
    "AsyncConnection",
    "Connect",
    "Connection",
    "handshake_error",
    "protocol_connect",
    "socket_connect",
    "websockets_connect",
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

    - ``recv`` takes no timeout (the client bounds it with a time limit) and is cancellation-safe:
      a cancelled ``recv`` loses no message. It serves the exchange right after opening (a hello, a resume);
    - ``listen(on_message, on_closed)`` hands every later message over as it arrives: first those that
      ``recv`` has not returned, then each new one, in order, to ``on_message``, called on the event loop
      (the connection awaits nothing in between, so a reply costs the client no extra task switch). Once the
      link has closed, by either side and for any reason, ``on_closed()`` is called once, after the last
      message, never from inside ``listen``. After ``listen``, ``recv`` is not called again.
    """

    @property
    def subprotocol(self) -> str | None: ...

    async def send(self, message: str | bytes) -> None: ...

    async def recv(self) -> str | bytes: ...

    def listen(self, on_message: Callable[[str | bytes], None], on_closed: Callable[[], None]) -> None: ...

    async def close(self) -> None: ...


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


