"""``/ws`` without the ASGI layer: a uvicorn WebSocket protocol that feeds frames straight to a Connection.

uvicorn serves HTTP and, when a request asks to upgrade, hands the socket to the class given as
``uvicorn.Config(ws=...)``. :class:`CorralWebSocketProtocol` runs the handshake with websockets' sans-I/O
``ServerProtocol``, decides it with the same :func:`~corral.server.websocket.accept` as the ASGI route, then
answers each frame inside ``data_received`` through :meth:`Connection.on_frame
<corral.server.websocket.Connection.on_frame>`. The replies one read produces leave in one ``transport.write``.
A connection holds no ASGI queue, scope or task, nor the handshake request once accepted.

Whole, unfragmented data frames (nearly every frame a client sends) are unmasked and framed here; everything
else (control frames, fragments, partial reads, protocol errors, the closing handshake) goes through
``ServerProtocol``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import types
from collections.abc import Callable, Coroutine, Generator
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import unquote
from weakref import WeakKeyDictionary

import orjson
import uvicorn
from uvicorn.server import ServerState
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import CONNECTING, OPEN, Event
from websockets.server import ServerProtocol
from websockets.utils import accept_key

from ..protocol.wsframe import BINARY, apply_mask, at_frame_boundary, data_frame, header
from .app import CorralApp
from .sessions import SessionManager
from .websocket import Connection, Refused, accept

_logger = logging.getLogger("uvicorn.error")
_TEXT, _BINARY, _CONT, _PONG = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG


class CorralWebSocketProtocol(asyncio.Protocol):
    """One upgraded connection to a :class:`~corral.server.CorralApp`; give the class to ``uvicorn.Config(ws=...)``.

    Frames are answered in the order they arrive. Should answering one suspend (a reply waiting on
    something), reading stops until it is done; environments that run off the loop already answer
    through tasks of their own (see ``Connection.on_frame``).
    """

    __slots__ = (
        "_backlog", "_batching", "_busy", "_config", "_connection", "_early", "_fresh", "_keepalive", "_lost", "_out",
        "_parts", "_parts_binary", "_read_paused", "_server_state", "_unanswered", "_write_paused", "_ws", "transport",
    )

    def __init__(self, config: uvicorn.Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._config = config
        self._server_state = server_state
        self._ws = ServerProtocol(max_size=config.ws_max_size, logger=_logger)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self._connection: Connection | None = None
        self._keepalive: _Keepalive | None = None
        #: Replying to a frame (or the handshake) suspended: later events wait for it, in order.
        self._busy: asyncio.Task[None] | None = None
        self._backlog: list[Event] = []
        #: Inside a read: replies collect in ``_out`` and leave in one write at its end.
        self._batching = False
        self._out: list[bytes] = []
        #: A fragmented message being received, and whether it is binary.
        self._parts: list[Any] | None = None
        self._parts_binary = False
        self._unanswered = False
        self._lost = False
        #: Nothing received yet: the first bytes are the upgrade request (see _quick_handshake).
        self._fresh = True
        #: Bytes that came while a quick handshake was being decided; websockets parses them once it is open.
        self._early: list[bytes] | None = None
        self._read_paused = False
        self._write_paused = False

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvicorn hands over a stream transport
        self._server_state.connections.add(self)  # type: ignore[arg-type]  # uvicorn lists its own classes

    def data_received(self, data: bytes) -> None:
        ws = self._ws
        if (self._connection is not None and self._busy is None and self._parts is None and ws.state is OPEN
                and at_frame_boundary(ws)):
            data = self._answer(data)
            if not data:
                self._flush()
                return
        elif self._fresh:
            self._fresh = False
            if self._quick_handshake(data):
                return
        elif self._early is not None:
            self._early.append(data)
            self._reading(paused=True)
            return
        ws.receive_data(data)
        if self._busy is None:
            self._process(ws.events_received())
        else:
            self._flush()
            self._reading(paused=True)  # the events wait in ``_ws`` until the reply in progress is done

    def eof_received(self) -> None:
        return None  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._server_state.connections.discard(self)
        if self._keepalive is not None:
            self._keepalive.members.discard(self)
        connection, self._connection = self._connection, None
        if connection is not None:
            self._drive(connection.drop())

    def pause_writing(self) -> None:
        # A client that does not read its replies is not read from either.
        self._write_paused = True
        self._reading(paused=True)

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._busy is None:
            self._reading(paused=False)

    # -- uvicorn's server ----------------------------------------------------------------------

    def shutdown(self) -> None:
        """uvicorn is stopping: close with 1012 (service restart), or refuse an upgrade not yet decided."""
        ws = self._ws
        if ws.state is OPEN:
            ws.send_close(1012)
        elif ws.state is CONNECTING and self._busy is not None:
            self._busy.cancel()  # it may be queued for a slot: uvicorn would wait for it, then cancel it
            self._refuse(Refused(503, {"code": "SHUTTING_DOWN", "message": "the server is shutting down; retry"}))
        self._flush()
        self.transport.close()

    # -- the Link a Connection writes to --------------------------------------------------------

    async def send(self, data: bytes, binary: bool) -> None:
        ws = self._ws
        if ws.state is not OPEN:
            raise ConnectionError("the WebSocket is closing")
        queued = ws.data_to_send()  # what websockets wrote so far (a pong, the handshake) goes first
        if queued:
            self._out.extend(queued)
        if len(data) < 126:
            self._out.append(header(len(data), binary) + data)
        else:
            self._out.append(header(len(data), binary))
            self._out.append(data)
        if not self._batching:
            self._flush()

    async def close(self, code: int) -> None:
        if self._ws.state is OPEN:
            self._ws.send_close(code)
            if not self._batching:
                self._flush()

    # -- events ----------------------------------------------------------------------------------

    def _answer(self, data: bytes) -> bytes:
        """Answer the whole, unfragmented, masked data frames at the start of ``data`` (websockets' parser
        holding nothing back); return the rest, from the first frame left to ``ServerProtocol``."""
        limit = self._ws.max_message_size
        at = 0
        self._batching = True
        try:
            while (span := data_frame(data, at, True, limit)) is not None:
                start, end = span
                self._message(apply_mask(data[start:end], data[start - 4 : start]), data[at] == BINARY)
                at = end
                if self._busy is not None:
                    break
        finally:
            self._batching = False
        return data[at:] if at else data

    def _process(self, events: list[Event]) -> None:
        self._batching = True
        try:
            for index, event in enumerate(events):
                if isinstance(event, Frame):
                    self._frame(event)
                else:
                    self._handshake(event)  # type: ignore[arg-type]  # a server receives no Response
                if self._busy is not None:
                    self._backlog = events[index + 1 :]
                    if self._backlog:
                        self._reading(paused=True)
                    break
        finally:
            self._batching = False
        self._flush()

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is _TEXT or opcode is _BINARY:
            if frame.fin:
                self._message(frame.data, opcode is _BINARY)
            else:
                self._parts = [frame.data]
                self._parts_binary = opcode is _BINARY
        elif opcode is _CONT:
            parts = self._parts
            if parts is not None:
                parts.append(frame.data)
                if frame.fin:
                    self._parts = None
                    self._message(b"".join(parts), self._parts_binary)
        elif opcode is _PONG:
            self._unanswered = False
        # ServerProtocol answers pings and close frames itself.

    def _message(self, data: Any, binary: bool) -> None:
        connection = self._connection
        if connection is not None and connection.open:
            self._drive(connection.on_frame(data if type(data) is bytes else bytes(data), binary))

    def _drive(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` now; if it suspends, finish it in a task and hold later events until it is done."""
        try:
            waiting = coro.send(None)
        except StopIteration:
            return
        except Exception:
            _logger.exception("Exception in the WebSocket connection")
            self._fail()
            return
        self._hold(_finish(coro, waiting))

    def _hold(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._busy = task
        self._server_state.tasks.add(task)
        task.add_done_callback(self._release)

    def _release(self, task: asyncio.Task[None]) -> None:
        self._server_state.tasks.discard(task)
        if self._busy is task:
            self._busy = None
        if not task.cancelled() and task.exception() is not None:
            _logger.error("Exception in the WebSocket connection", exc_info=task.exception())
            self._fail()
            return
        if self._lost or self._busy is not None:
            return
        events, self._backlog = self._backlog + self._ws.events_received(), []
        if not self._write_paused:
            self._reading(paused=False)
        self._process(events)

    # -- the opening handshake ---------------------------------------------------------------------

    def _handshake(self, request: Request) -> None:
        ws = self._ws
        response = ws.accept(request)
        if response.status_code != 101:  # not a valid WebSocket request: websockets' own answer
            ws.send_response(response)
            return
        app = self._config.app
        if not isinstance(app, CorralApp):
            _logger.error("%s serves apps made by corral.server.create_app; give uvicorn ws='websockets-sansio' "
                          "for %r", type(self).__name__, app)
            self._refuse(Refused(500, {"code": "SERVER_ERROR", "message": "this server has no WebSocket handler"}))
            return
        if self._config.root_path + unquote(request.path.partition("?")[0]) != "/ws":
            self._refuse(Refused(404, {"code": "NOT_FOUND", "message": "WebSocket endpoint is /ws"}))
            return
        headers = request.headers

        def switch(subprotocol: str | None) -> None:
            if subprotocol is not None:
                response.headers["Sec-WebSocket-Protocol"] = subprotocol
            self._ws.send_response(response)

        offered = [token.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for token in value.split(",")]
        self._drive(self._open(app.manager, lambda name: _first(headers, name), offered, switch))

    def _quick_handshake(self, data: bytes) -> bool:
        """Answer a plain upgrade request to ``/ws`` without websockets' HTTP parser and response objects.

        uvicorn hands over the request it parsed, rebuilt as ``GET target HTTP/1.1`` and lower-case
        ``name: value`` lines. Anything this does not recognise as a well-formed WebSocket upgrade to this
        app's ``/ws`` goes through ``ServerProtocol`` instead, which gives the exact HTTP error. Returns
        whether it took the request.
        """
        parsed = _upgrade_request(data)
        app = self._config.app
        if parsed is None or not isinstance(app, CorralApp):
            return False
        target, headers = parsed
        key = _valid_upgrade(headers)
        if key is None or self._config.root_path + unquote(target.partition("?")[0]) != "/ws":
            return False

        def switch(subprotocol: str | None) -> None:
            # From here on websockets parses frames only (and answers control frames, the closing handshake).
            self._ws = ws = ServerProtocol(state=OPEN, max_size=self._config.ws_max_size, logger=_logger)
            self._out.append(_switching_protocols(key, subprotocol))
            early, self._early = self._early, None
            if early:
                ws.receive_data(b"".join(early))  # answered once the open is done (see _release)

        self._early = []

        offered = [token.strip() for value in headers.get("sec-websocket-protocol", ()) for token in value.split(",")]
        self._drive(self._open(app.manager, lambda name: (headers.get(name) or (None,))[0], offered, switch))
        return True

    async def _open(self, manager: SessionManager, header: Callable[[str], str | None], offered: list[str],
                    switch: Callable[[str | None], None]) -> None:
        """Decide the upgrade (see :func:`~corral.server.websocket.accept`); ``switch`` sends the 101."""
        try:
            connection, subprotocol = await accept(manager, self, header, offered)
        except Refused as refusal:
            self._refuse(refusal)
            self._flush()
            return
        if self._lost or self.transport.is_closing():
            await connection.drop()
            return
        switch(subprotocol)
        self._connection = connection
        self._batching = True
        try:
            await connection.start()
        finally:
            self._batching = False
        self._flush()
        interval = self._config.ws_ping_interval
        if interval:
            self._keepalive = _Keepalive.of(self._server_state, interval)
            self._keepalive.add(self)

    def _refuse(self, refusal: Refused) -> None:
        body = orjson.dumps(refusal.body)
        headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                           ("Connection", "close"), *refusal.headers])
        self._ws.send_response(Response(refusal.status, HTTPStatus(refusal.status).phrase, headers, body))

    # -- output and failure ------------------------------------------------------------------------

    def _flush(self) -> None:
        writes = self._ws.data_to_send()
        if self._out:
            writes = self._out + writes if writes else self._out
            self._out = []
        transport = self.transport
        if not writes or self._lost or transport.is_closing():
            return
        if writes[-1] == b"":  # websockets' SEND_EOF: these are the connection's last bytes
            transport.write(b"".join(writes))
            transport.close()
        else:
            transport.write(writes[0] if len(writes) == 1 else b"".join(writes))

    def _reading(self, *, paused: bool) -> None:
        if paused != self._read_paused and not self._lost:
            self._read_paused = paused
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def _fail(self) -> None:
        """An unexpected error: close with 1011, or answer 500 to a handshake not yet answered."""
        ws = self._ws
        if ws.state is OPEN:
            ws.fail(1011)
        elif ws.state is CONNECTING:
            ws.send_response(ws.reject(500, "Internal Server Error\n"))
        self._flush()
        if not self._lost:
            self.transport.close()

    def _ping(self) -> None:
        """Once per ping interval: ping, or cut a link that left the last ping (or close) unanswered."""
        if self._lost:
            return
        ws = self._ws
        if self._unanswered:
            # Half-open or stuck: its sessions detach now (corral/1: resumable within the lease).
            if ws.state is OPEN:
                ws.fail(1011, "keepalive ping timeout")
                self._flush()
            self.transport.abort()
            return
        self._unanswered = True
        if ws.state is OPEN:
            ws.send_ping(b"")
            self._flush()


class _Keepalive:
    """One timer per server: every interval it pings each open connection (one timer, not one per socket)."""

    __slots__ = ("__weakref__", "_interval", "_timer", "members")

    _by_server: ClassVar[WeakKeyDictionary[ServerState, _Keepalive]] = WeakKeyDictionary()

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._timer: asyncio.TimerHandle | None = None
        self.members: set[CorralWebSocketProtocol] = set()

    @classmethod
    def of(cls, server_state: ServerState, interval: float) -> _Keepalive:
        keepalive = cls._by_server.get(server_state)
        if keepalive is None:
            keepalive = cls._by_server[server_state] = cls(interval)
        return keepalive

    def add(self, protocol: CorralWebSocketProtocol) -> None:
        self.members.add(protocol)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        for protocol in list(self.members):
            protocol._ping()
        if self.members:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._tick)


def _upgrade_request(data: bytes) -> tuple[str, dict[str, list[str]]] | None:
    """``(target, headers by lower-case name)`` of a bodiless ``GET`` request that is all of ``data``, else None."""
    if not data.endswith(b"\r\n\r\n"):
        return None
    request_line, *lines = data[:-4].split(b"\r\n")
    method, _, rest = request_line.partition(b" ")
    target, _, version = rest.rpartition(b" ")
    if method != b"GET" or version != b"HTTP/1.1" or not target.startswith(b"/"):
        return None
    headers: dict[str, list[str]] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            return None
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.strip().decode("latin-1"))
    if "content-length" in headers or "transfer-encoding" in headers:
        return None
    return target.decode("latin-1"), headers


def _valid_upgrade(headers: dict[str, list[str]]) -> str | None:
    """The ``Sec-WebSocket-Key`` of a valid version-13 upgrade (RFC 6455 section 4.2.1), else None."""
    upgrade = headers.get("upgrade", ())
    connection = headers.get("connection", ())
    keys = headers.get("sec-websocket-key", ())
    if ([value.lower() for value in upgrade] != ["websocket"] or headers.get("sec-websocket-version") != ["13"]
            or "upgrade" not in {token.strip().lower() for value in connection for token in value.split(",")}
            or len(keys) != 1):
        return None
    try:
        raw = base64.b64decode(keys[0].encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None
    return keys[0] if len(raw) == 16 else None


def _switching_protocols(key: str, subprotocol: str | None) -> bytes:
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Accept: {accept_key(key)}"]
    if subprotocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _first(headers: Headers, name: str) -> str | None:
    values = headers.get_all(name)
    return values[0] if values else None


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], waiting: Any) -> Generator[Any, Any, None]:
    """Carry on a coroutine that was started outside any task and suspended on ``waiting``."""
    while True:
        try:
            sent = yield waiting
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                waiting = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waiting = coro.send(sent)
            except StopIteration:
                return


async def _finish(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    await _resume(coro, waiting)
