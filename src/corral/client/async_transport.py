"""The default async transport: an ``asyncio.Protocol`` driving :class:`~corral.client.websocket.ClientWebSocket`.

Bytes are parsed in ``data_received`` and each whole message goes straight to the client's callback (see
:meth:`~corral.client.transport.AsyncConnection.listen`), so a reply wakes nothing but the task that waits
for it. TLS (``wss://``) is asyncio's own.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar, cast

from .websocket import CLOSE_TIMEOUT, PING_INTERVAL, ClientWebSocket, handshake_error

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """``await`` with a time limit (``asyncio.TimeoutError`` past it). On Python >= 3.11 this is
    ``asyncio.timeout``, which cancels the waiting task itself; ``asyncio.wait_for`` would first wrap a
    coroutine in a task of its own, a task and a loop iteration more for every connect, hello and close."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)  # pragma: no cover - Python 3.10


class ProtocolConnection(asyncio.Protocol):
    """An open WebSocket on an asyncio transport: a :class:`~corral.client.transport.AsyncConnection`."""

    def __init__(self, ws: ClientWebSocket, ping_interval: float = PING_INTERVAL) -> None:
        self._ws = ws
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._inbox: deque[str | bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._on_message: Callable[[str | bytes], None] | None = None
        self._on_closed: Callable[[], None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._ping_interval = ping_interval
        self._keepalive: asyncio.TimerHandle | None = None

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    async def send(self, message: str | bytes) -> None:
        self._ws.send(message)
        self._flush()
        if self._writable is not None:
            await asyncio.shield(self._writable)

    async def recv(self) -> str | bytes:
        while not self._inbox:
            if self._ws.closed:
                raise self._ws.close_error()
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._inbox.popleft()

    def listen(self, on_message: Callable[[str | bytes], None], on_closed: Callable[[], None]) -> None:
        self._on_message = on_message
        self._on_closed = on_closed
        while self._inbox:
            on_message(self._inbox.popleft())
        if self._lost.done():
            self._loop.call_soon(self._closed)

    async def close(self) -> None:
        """The closing handshake within :data:`CLOSE_TIMEOUT` seconds, then the socket. Idempotent."""
        if self.transport is None:
            return
        if self._ws.open:
            self._ws.close()
            self._flush()
        try:
            await within(asyncio.shield(self._lost), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            pass
        finally:
            if not self._lost.done():
                self.transport.abort()

    async def opened(self) -> None:
        """Wait for the server to accept the handshake; raise why it did not."""
        await self._opened

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        self._flush()
        self._keepalive = self._loop.call_later(self._ping_interval, self._tick)

    def data_received(self, data: bytes) -> None:
        messages = self._ws.receive(data)
        self._flush()
        if not self._opened.done():
            try:
                if not self._ws.accepted():
                    return
            except Exception as exc:
                self._opened.set_exception(exc)
                return
            self._opened.set_result(None)
        if messages:
            on_message = self._on_message
            if on_message is None:
                self._inbox.extend(messages)
                self._wake()
            else:
                for message in messages:
                    on_message(message)

    def eof_received(self) -> bool:
        self._ws.receive_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._ws.receive_eof()
        if self._keepalive is not None:
            self._keepalive.cancel()
        if not self._opened.done():
            try:
                self._ws.accepted()
                error: BaseException = exc or ConnectionError("the server closed the connection")
            except Exception as handshake:
                error = handshake
            self._opened.set_exception(error)
            self._opened.exception()  # retrieved: nobody may be waiting any more
        self._lost.set_result(None)
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._wake()
        if self._on_closed is not None:
            self._closed()

    def pause_writing(self) -> None:
        self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None:
            self._writable.set_result(None)
            self._writable = None

    # -- helpers ---------------------------------------------------------------------------------

    def _flush(self) -> None:
        data = self._ws.outgoing()
        if data and self.transport is not None and not self._ws.closed:
            self.transport.write(data)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _closed(self) -> None:
        on_closed, self._on_closed = self._on_closed, None
        if on_closed is not None:
            on_closed()

    def _tick(self) -> None:
        assert self.transport is not None
        self._keepalive = self._loop.call_later(self._ping_interval, self._tick)
        if self._ws.keepalive():
            self._flush()
        else:
            self.transport.abort()


async def protocol_connect(url: str, subprotocols: Sequence[str], headers: Mapping[str, str], open_timeout: float,
                           *, ping_interval: float = PING_INTERVAL) -> ProtocolConnection:
    """The default :class:`~corral.client.transport.AsyncConnect`: a :class:`ProtocolConnection`, for ``ws://``,
    ``wss://`` and ``unix://`` URLs."""
    loop = asyncio.get_running_loop()
    connection: ProtocolConnection | None = None
    try:
        ws = ClientWebSocket(url, subprotocols, headers)
        connection = ProtocolConnection(ws, ping_interval)
        factory = lambda: connection  # noqa: E731
        if ws.unix_path is not None:
            dialing = loop.create_unix_connection(factory, ws.unix_path)
        elif ws.uri.secure:
            dialing = loop.create_connection(factory, ws.uri.host, ws.uri.port, ssl=ssl.create_default_context(),
                                             server_hostname=ws.uri.host)
        else:
            dialing = loop.create_connection(factory, ws.uri.host, ws.uri.port)
        await within(_open(dialing, connection), open_timeout)
    except Exception as exc:
        if connection is not None and connection.transport is not None:
            connection.transport.abort()
        if isinstance(exc, asyncio.TimeoutError):
            exc = TimeoutError("timed out during the opening handshake")
        raise handshake_error(url, exc) from exc
    return connection


async def _open(dialing: Awaitable[object], connection: ProtocolConnection) -> None:
    await dialing
    await connection.opened()
