"""Transports: how a client opens its WebSocket. The default dials a socket with ``websockets``.

A transport is a connect callable, ``connect(url, subprotocols, headers, open_timeout)``, returning a
connection shaped like a ``websockets`` one. Pass another to ``EnvClient(..., transport=...)`` (a
:class:`Connect`) or ``AsyncEnvClient(..., transport=...)`` (an :class:`AsyncConnect`);
:mod:`corral.testing` uses this to reach a server app in the same process.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, Protocol

import orjson
from websockets.asyncio.client import connect as _async_connect
from websockets.asyncio.client import unix_connect as _async_unix_connect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as _sync_connect
from websockets.sync.client import unix_connect as _sync_unix_connect
from websockets.typing import Subprotocol

from ..errors import CorralError, TransportError, error_for_code

#: The URL a WebSocket handshake names when the link is a Unix socket (the host is not dialled).
UNIX_HANDSHAKE_URL = "ws://localhost/ws"

#: websockets >= 17.1 warns when a connection opened without ``with`` is used, unless it is opened as legacy.
_DIRECT: dict[str, Any] = {"legacy": True} if "legacy" in inspect.signature(_sync_connect).parameters else {}


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


def websockets_connect(url: str, subprotocols: Sequence[str], headers: Mapping[str, str],
                       open_timeout: float) -> Connection:
    """The default :class:`Connect`: a socket through ``websockets.sync``."""
    options = _options(subprotocols, headers, open_timeout)
    try:
        connection: ClientConnection
        if url.startswith("unix://"):
            connection = _sync_unix_connect(url[len("unix://"):], UNIX_HANDSHAKE_URL, **options, **_DIRECT)
        else:
            connection = _sync_connect(url, **options, **_DIRECT)
    except Exception as exc:
        raise handshake_error(url, exc) from exc
    return connection


async def websockets_connect_async(url: str, subprotocols: Sequence[str], headers: Mapping[str, str],
                                   open_timeout: float) -> AsyncConnection:
    """The default :class:`AsyncConnect`: a socket through ``websockets.asyncio``, pinged every 20 s."""
    options = _options(subprotocols, headers, open_timeout)
    try:
        if url.startswith("unix://"):
            return await _async_unix_connect(url[len("unix://"):], UNIX_HANDSHAKE_URL, **options,
                                             ping_interval=20, ping_timeout=20)
        return await _async_connect(url, **options, ping_interval=20, ping_timeout=20)
    except Exception as exc:
        raise handshake_error(url, exc) from exc


def _options(subprotocols: Sequence[str], headers: Mapping[str, str], open_timeout: float) -> dict[str, Any]:
    return {
        "subprotocols": [Subprotocol(s) for s in subprotocols],
        "additional_headers": headers,
        "open_timeout": open_timeout,
        "max_size": None,
        "compression": None,
    }


def handshake_error(url: str, exc: BaseException) -> CorralError:
    """Translate a failed WebSocket open into a Corral error that says what to do."""
    if isinstance(exc, InvalidStatus):
        response = exc.response
        try:
            body = orjson.loads(response.body or b"{}")
        except Exception:
            body = {}
        if not isinstance(body, dict):
            body = {}
        code = str(body.get("code") or {401: "UNAUTHORIZED", 503: "CAPACITY_REACHED"}.get(response.status_code, ""))
        message = str(body.get("message") or f"server refused the connection with HTTP {response.status_code}")
        if code:
            details = {k: v for k, v in body.items() if k not in ("code", "message")}
            retry_after = response.headers.get("Retry-After")
            if retry_after is not None:
                details["retry_after"] = retry_after
            return error_for_code(code, message, details)
        return TransportError(f"{url}: {message}")
    if isinstance(exc, (OSError, TimeoutError)):
        return TransportError(f"cannot connect to {url}: {exc}; is the server running?")
    return TransportError(f"cannot connect to {url}: {type(exc).__name__}: {exc}")
