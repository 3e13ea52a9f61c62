"""Talk to an ASGI app with no sockets: its ``receive`` and ``send`` callables are two queues.

:class:`Lifespan` runs the app's startup and shutdown; :class:`ASGIWebSocket` is one WebSocket
connection that keeps the contract of a client's transport (an
:class:`~corral.client.transport.AsyncConnection`), so a client drives it the way it drives a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

from ..errors import TransportError

Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

#: Put on the app's outbox when its call returns or raises, so that nobody waits on a finished app.
_FINISHED = "corral.testing.finished"


class _AppCall:
    """One running call of an ASGI app: messages go in through ``put`` and come out through ``get``."""

    def __init__(self, app: ASGIApp, scope: MutableMapping[str, Any]) -> None:
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.error: Exception | None = None
        self.task = asyncio.get_running_loop().create_task(self._run(app, scope))

    async def _run(self, app: ASGIApp, scope: MutableMapping[str, Any]) -> None:
        try:
            await app(scope, self._inbox.get, self._outbox.put)
        except Exception as exc:
            self.error = exc  # surfaced to whoever reads next, never lost as an unretrieved task error
        finally:
            self._outbox.put_nowait({"type": _FINISHED})

    def put(self, message: Message) -> None:
        self._inbox.put_nowait(message)

    async def get(self) -> Message:
        """The app's next message; ``{"type": _FINISHED}`` (repeatedly) once the app has returned."""
        message = await self._outbox.get()
        if message["type"] == _FINISHED:
            self._outbox.put_nowait(message)
        return message

    async def wait(self, timeout: float) -> None:
        """Wait for the app's call to end; cancel it after ``timeout`` seconds. A waiter that is
        cancelled itself leaves the call running (its cleanup, closing sessions, is not cut short)."""
        await asyncio.wait((self.task,), timeout=timeout)
        if not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


class Lifespan:
    """The ASGI lifespan protocol: ``startup`` before the first connection, ``shutdown`` after the last."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._call: _AppCall | None = None

    async def startup(self) -> None:
        """Start the app; raise :class:`~corral.errors.TransportError` when its startup fails."""
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        call = self._call = _AppCall(self._app, scope)
        call.put({"type": "lifespan.startup"})
        message = await call.get()
        if message["type"] == "lifespan.startup.complete":
            return
        if message["type"] == _FINISHED and call.error is None:
            return  # the app does not use lifespan events
        reason = message.get("message") or call.error
        raise TransportError(f"the app failed to start: {reason}") from call.error

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the app (it closes every session). Idempotent."""
        call, self._call = self._call, None
        if call is None:
            return
        call.put({"type": "lifespan.shutdown"})
        while (await call.get())["type"] not in ("lifespan.shutdown.complete", "lifespan.shutdown.failed", _FINISHED):
            pass
        await call.wait(timeout)


class ASGIWebSocket:
    """One WebSocket connection to an ASGI app. Open it with :meth:`connect`."""

    def __init__(self, call: _AppCall, subprotocol: str | None) -> None:
        self._call = call
        self.subprotocol = subprotocol
        self.close_code: int | None = None
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        app: ASGIApp,
        *,
        path: str = "/ws",
        subprotocols: Sequence[str] = (),
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> ASGIWebSocket:
        """Open the connection. A refusal raises ``websockets``' ``InvalidStatus``, as a real handshake would."""
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "ws",
            "server": ("corral.inprocess", 80),
            "client": ("127.0.0.1", 0),
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()],
            "subprotocols": list(subprotocols),
            "extensions": {"websocket.http.response": {}},
            "state": {},
        }
        call = _AppCall(app, scope)
        call.put({"type": "websocket.connect"})
        try:
            first = await asyncio.wait_for(call.get(), timeout)
        except asyncio.TimeoutError:
            call.task.cancel()
            await call.wait(timeout)
            raise TimeoutError(f"the app did not answer the WebSocket handshake within {timeout}s") from None
        if first["type"] == "websocket.accept":
            return cls(call, first.get("subprotocol"))
        if first["type"] == _FINISHED and call.error is not None:
            raise TransportError(f"the app failed during the WebSocket handshake: {call.error}") from call.error
        raise InvalidStatus(await _refusal(call, first, timeout))

    async def send(self, data: str | bytes) -> None:
        """Deliver one frame to the app. Raises ``ConnectionClosed`` once the connection is closed."""
        if self.close_code is not None:
            raise self._closed()
        key = "bytes" if isinstance(data, bytes) else "text"
        self._call.put({"type": "websocket.receive", key: data})

    async def recv(self) -> str | bytes:
        """The app's next frame. Raises ``ConnectionClosed`` when the app closes the connection or ends."""
        while self.close_code is None:
            message = await self._call.get()
            kind = message["type"]
            if kind == "websocket.send":
                text = message.get("text")
                return text if text is not None else bytes(message.get("bytes") or b"")
            if kind == "websocket.close":
                self.close_code = int(message.get("code", 1000))
            elif kind == _FINISHED:
                self.close_code = 1011 if self._call.error else 1006
                raise self._closed() from self._call.error
        raise self._closed()

    def listen(self, on_message: Callable[[str | bytes], None], on_closed: Callable[[], None]) -> None:
        """Hand each of the app's frames to ``on_message`` from now on, then call ``on_closed`` once the
        connection is closed."""
        self._listener = asyncio.get_running_loop().create_task(self._deliver(on_message, on_closed))

    async def _deliver(self, on_message: Callable[[str | bytes], None], on_closed: Callable[[], None]) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                on_message(await self.recv())
        on_closed()

    def _closed(self) -> ConnectionClosed:
        code = self.close_code
        if code is None or code == 1006:  # 1006: no close frame, the app just ended
            return ConnectionClosedError(None, None)
        if code in (1000, 1001):
            return ConnectionClosedOK(Close(code, ""), None)
        return ConnectionClosedError(Close(code, ""), None)

    async def close(self, code: int = 1000, timeout: float = 10.0) -> None:
        """Tell the app the client went away and wait for its handler to return. Idempotent."""
        if self.close_code is None:
            self.close_code = code
        self._call.put({"type": "websocket.disconnect", "code": code})
        await self._call.wait(timeout)
        if self._listener is not None:
            await asyncio.wait((self._listener,), timeout=timeout)


async def _refusal(call: _AppCall, start: Message, timeout: float) -> Response:
    """The HTTP response an app sent instead of accepting (a bare close reads as 403, as on a real server)."""
    if start["type"] != "websocket.http.response.start":
        await call.wait(timeout)
        return Response(403, "Forbidden", Headers())
    body = b""
    while True:
        message = await call.get()
        if message["type"] != "websocket.http.response.body":
            break
        body += bytes(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await call.wait(timeout)
    headers = Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])])
    return Response(int(start["status"]), "", headers, body)
