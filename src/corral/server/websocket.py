"""The ``/ws`` endpoint: one connection, one or many sessions, in either dialect.

:class:`Connection` is the hot path: frame decode → env step → frame encode. Both ways in share it and
:func:`accept`: Corral's own uvicorn protocol (:mod:`corral.server.wsprotocol`, what ``serve`` runs) and
the plain ASGI handler :func:`websocket_endpoint` (in-memory transports, other ASGI servers). Requests
for one session run in arrival order; requests for different sessions of one connection run
concurrently. Nothing a client sends can take the server down: every bad frame gets an error frame
and the connection carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol

import orjson

from ..environment import AsyncEnvironment
from ..errors import CapacityReached, CorralError, EnvironmentFailed, FactoryError, InvalidAction, SessionError
from ..protocol import (
    PROTOCOL_VERSION,
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    Codec,
    Dialect,
    ErrorCode,
    codec_for_subprotocol,
    envelope,
    error_frame,
)
from .auth import bearer_matches
from .mcp import handle_jsonrpc
from .sessions import Session, SessionManager

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_SESSION_TYPES = frozenset({"reset", "step", "state", "close", "mcp"})
_CONNECTION_TYPES = frozenset({"ping", "open", "resume", "reset_many", "step_many", "close_many"})


async def deny(scope: Scope, send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    """Refuse a WebSocket before the upgrade with a real HTTP response (or a bare 403 if unsupported)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        payload = orjson.dumps(body)
        all_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "websocket.http.response.start", "status": status, "headers": all_headers + headers})
        await send({"type": "websocket.http.response.body", "body": payload})
    else:
        await send({"type": "websocket.close", "code": 1008})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class Link(Protocol):
    """Where a :class:`Connection`'s messages go: uvicorn's ASGI channel, or a transport of our own."""

    async def send(self, data: bytes, binary: bool) -> None:
        """Send one message (a binary or a UTF-8 text frame); raise if the link is gone."""

    async def close(self, code: int) -> None:
        """Start the closing handshake with ``code``."""


class Refused(Exception):
    """A WebSocket refused before the upgrade: answered with an HTTP ``status`` and a JSON ``body``."""

    def __init__(self, status: int, body: dict[str, Any], headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body
        self.headers = headers


async def accept(
    manager: SessionManager, link: Link, header: Callable[[str], str | None], offered: Sequence[str]
) -> tuple[Connection, str | None]:
    """Decide an upgrade before it happens: check the token, pick the dialect from the ``offered``
    subprotocols, then admit and open the session (waiting if asked) or resume one.

    ``header`` looks up a request header by its lower-case name. Returns the connection and the
    subprotocol to select; raises :class:`Refused` with the HTTP response to send instead.
    """
    config = manager.config
    if not bearer_matches(header("authorization"), config.token):
        raise Refused(401, {"code": ErrorCode.UNAUTHORIZED, "message": "missing or wrong bearer token"},
                      [("www-authenticate", "Bearer")])
    subprotocol = next((p for p in (SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON) if p in offered), None)
    dialect = Dialect.CORRAL if subprotocol else Dialect.COMPAT
    primary: Session | None = None
    try:
        resume_id = header("x-corral-resume-session") if dialect is Dialect.CORRAL else None
        if resume_id is not None:
            primary = manager.resume(resume_id, header("x-corral-resume-token") or "")
        elif dialect is Dialect.COMPAT or header("x-corral-open") != "0":
            wait = header("x-corral-admission-wait")
            await manager.admit(wait_s=_wait_s(float(wait)) if wait else 0.0)
            primary = await manager.open(admitted=True)
    except CapacityReached as exc:
        manager.metrics.errors[exc.code] += 1
        raise Refused(503, {"code": exc.code, "message": exc.message, **exc.details}, [("retry-after", "1")]) from None
    except FactoryError as exc:
        raise Refused(500, {"code": exc.code, "message": exc.message, **exc.details}) from None
    except SessionError as exc:
        raise Refused(410, {"code": exc.code, "message": exc.message, **exc.details}) from None
    except ValueError:
        raise Refused(400, {"code": "BAD_REQUEST", "message": "X-Corral-Admission-Wait must be seconds"}) from None
    connection = Connection(manager, link, dialect, codec_for_subprotocol(subprotocol), primary)
    connection.resumed = resume_id is not None
    return connection, subprotocol


class _ASGILink:
    """A :class:`Link` over uvicorn's ASGI ``send``."""

    __slots__ = ("_send",)

    def __init__(self, send: Send) -> None:
        self._send = send

    async def send(self, data: bytes, binary: bool) -> None:
        if binary:
            await self._send({"type": "websocket.send", "bytes": data})
        else:
            await self._send({"type": "websocket.send", "text": data.decode()})

    async def close(self, code: int) -> None:
        await self._send({"type": "websocket.close", "code": code})


async def websocket_endpoint(manager: SessionManager, scope: Scope, receive: Receive, send: Send) -> None:
    """``/ws`` as an ASGI handler (in-memory transports, and servers other than :func:`~corral.server.serve`)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    try:
        connection, subprotocol = await accept(
            manager, _ASGILink(send), lambda name: _header(scope, name.encode()), scope.get("subprotocols") or []
        )
    except Refused as refusal:
        headers = [(name.encode(), value.encode("latin-1")) for name, value in refusal.headers]
        await deny(scope, send, refusal.status, refusal.body, headers)
        return
    try:
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
    except BaseException:
        await connection.drop()
        raise
    try:
        await connection.start()
        while connection.open:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                if text is not None:
                    await connection.on_frame(text, False)
                else:
                    await connection.on_frame(message.get("bytes") or b"", True)
            elif kind == "websocket.disconnect":
                break
    finally:
        await connection.drop()


class Connection:
    """One accepted WebSocket and the sessions it carries. Its messages go out through a :class:`Link`."""

    __slots__ = (
        "_inline_env", "_link", "_tasks", "codec", "dialect", "in_flight", "manager", "open", "primary", "resumed",
        "sessions",
    )

    def __init__(
        self, manager: SessionManager, link: Link, dialect: Dialect, codec: Codec, primary: Session | None
    ) -> None:
        self.manager = manager
        self._link = link
        self.dialect = dialect
        self.codec = codec
        self.primary = primary
        self.resumed = False
        self.sessions: dict[str, Session] = {}
        self.in_flight = 0
        self.open = True
        self._tasks: set[asyncio.Task[None]] = set()
        env_cls = manager.env_cls
        self._inline_env = env_cls.inline and not issubclass(env_cls, AsyncEnvironment)
        if primary is not None:
            self._attach(primary)

    def _attach(self, session: Session) -> None:
        previous = session.connection
        if isinstance(previous, Connection) and previous is not self:
            previous.sessions.pop(session.id, None)
            if previous.primary is session:
                previous.primary = None
        session.attach(self)
        self.sessions[session.id] = session
        if not self.open:  # the link dropped while this request ran: keep the session for a resume
            self.sessions.pop(session.id)
            session.detach(self)

    async def send(self, frame: dict[str, Any]) -> None:
        if self.open:
            await self._write(self._encode(frame))

    async def send_reply(self, session: Session, frame_id: Any, reply: dict[str, Any]) -> None:
        """Send a session's reply; if it is kept for replay and small, keep the bytes that were sent instead of
        the dict. A large reply stays a dict: it shares the environment's buffers, where its bytes would be a
        second copy held for the whole window (and a fresh allocation per step)."""
        if not self.open:
            return
        data = self._encode(reply)
        if frame_id is not None and len(data) <= _RECORD_AS_BYTES_MAX and session.replay.get(frame_id) is reply:
            session.replay[frame_id] = (self.codec.name, data)
        await self._write(data)

    def _encode(self, frame: dict[str, Any]) -> bytes:
        try:
            return self.codec.encode(frame)
        except Exception as exc:
            # Something the environment returned has no wire form in this codec: answer, never go silent.
            err = EnvironmentFailed(f"the reply could not be encoded as {self.codec.name}: {type(exc).__name__}: {exc}")
            self.manager.metrics.errors[err.code] += 1
            reply = error_frame(err.code, err.message, frame.get("id"))
            if "session" in frame:
                reply["session"] = frame["session"]
            return self.codec.encode(reply)

    async def _write(self, data: bytes) -> None:
        try:
            await self._link.send(data, self.codec.binary)
        except Exception:
            self.open = False  # the peer is gone; the read loop sees the disconnect and detaches

    async def send_error(self, err: CorralError, frame_id: Any = None, session: str | None = None) -> None:
        self.manager.metrics.errors[err.code] += 1
        frame = error_frame(err.code, err.message, frame_id, **err.details)
        if session is not None and self.dialect is Dialect.CORRAL:
            frame["session"] = session
        await self.send(frame)

    async def refuse(self, code: str, message: str, frame_id: Any = None, **extra: Any) -> None:
        """Answer a frame that could not be dispatched with an error frame (counted in the metrics)."""
        self.manager.metrics.errors[code] += 1
        await self.send(error_frame(code, message, frame_id, **extra))

    async def hello(self) -> None:
        env = self.manager.env_cls
        config = self.manager.config
        primary = self.primary
        await self.send({
            "type": "hello",
            "data": {
                "protocol": PROTOCOL_VERSION,
                "codec": self.codec.name,
                "env": {"name": env.info.name, "version": env.info.version},
                "session": primary.id if primary else None,
                "resume_token": primary.token if primary else None,
                "resumed": self.resumed,
                "limits": {
                    "max_message_bytes": config.max_message_bytes,
                    "step_deadline_s": config.step_timeout_s,
                    "lease_s": config.lease_s,
                    "max_in_flight": config.max_in_flight,
                    "max_sessions_per_connection": config.max_sessions_per_connection,
                },
            },
        })

    async def start(self) -> None:
        """Greet the client once the upgrade is accepted (corral/1 only: compat has no hello)."""
        if self.dialect is Dialect.CORRAL:
            await self.hello()

    async def drop(self) -> None:
        """The link is gone. compat sessions close now; corral/1 sessions wait out their lease for a resume."""
        self.open = False
        for session in list(self.sessions.values()):
            if self.dialect is Dialect.COMPAT:
                await self.manager.close(session)
            else:
                session.detach(self)
        self.sessions.clear()

    # -- frames --------------------------------------------------------------------------------

    async def on_frame(self, raw: str | bytes, binary: bool) -> None:
        """Answer one received message (``binary``: it came in a binary frame, else a text frame)."""
        config = self.manager.config
        if len(raw) > config.max_message_bytes:
            await self.refuse(
                ErrorCode.FRAME_TOO_LARGE,
                f"frame of {len(raw)} bytes exceeds the limit of {config.max_message_bytes}; send smaller frames",
            )
            return
        if binary and not self.codec.binary:
            await self.refuse(
                ErrorCode.INVALID_JSON,
                "binary frames are not accepted on this connection: send JSON text frames, or negotiate "
                "the corral.v1+msgpack subprotocol for binary frames",
            )
            return
        try:
            frame = self.codec.decode(raw)
        except Exception as exc:
            await self.refuse(ErrorCode.INVALID_JSON, f"frame is not valid {self.codec.name}: {exc}")
            return
        if not isinstance(frame, dict):
            await self.refuse(ErrorCode.INVALID_JSON, f"frame must be an object, got {type(frame).__name__}")
            return
        frame_id = frame.get("id") if self.dialect is Dialect.CORRAL else None
        kind = frame.get("type")
        if not _valid_id(frame_id):
            await self.refuse(ErrorCode.VALIDATION_ERROR, _ID_RULE, frame_id, errors=_field_error("id", _ID_RULE))
            return
        if self.in_flight >= config.max_in_flight:
            await self.refuse(
                ErrorCode.RATE_LIMITED,
                f"more than {config.max_in_flight} requests in flight on this connection; wait for replies",
                frame_id,
            )
            return
        if kind in _SESSION_TYPES:
            target = frame.get("session") if self.dialect is Dialect.CORRAL else None
            if target is not None and not isinstance(target, str):
                rule = "'session' must be a session id string"
                await self.refuse(ErrorCode.VALIDATION_ERROR, rule, frame_id, errors=_field_error("session", rule))
                return
            session = self.primary if target is None else self.sessions.get(target)
            if session is None:
                what = f"session {target!r} is not open on this connection" if target else "no session is open"
                err = SessionError(f"{what}; open or resume it first", details={"session": target})
                err.code = ErrorCode.SESSION_NOT_FOUND
                await self.send_error(err, frame_id)
                return
            if session.pending == 0 and kind != "close" and not session.runner.preemptible:
                # Fast path: an inline environment never suspends, so answering in the read loop
                # keeps order and skips a task per frame; a step is answered without a coroutine.
                reply = self.answer_now(session, kind, frame, frame_id)
                if reply is None:
                    await self._session_request(session, kind, frame, frame_id)
                    return
                await self.send_reply(session, frame_id, reply)
                if self.dialect is Dialect.COMPAT and session.closed:
                    await self.close()
            else:
                session.pending += 1
                self._spawn(self._session_request(session, kind, frame, frame_id), session)
        elif kind in _CONNECTION_TYPES and self.dialect is Dialect.CORRAL:
            if kind == "ping":
                now = time.monotonic()
                for carried in self.sessions.values():  # a live client keeps the sessions it carries
                    carried.last_active = now
                await self.send({"type": "pong", "id": frame_id})
            elif kind == "close_many":
                # Take the sessions off this connection now: should the link drop before the task runs,
                # they are closed as asked, not detached and kept for a resume.
                self._spawn(self._close_many(frame_id, self._claim(frame.get("data"))))
            else:
                self._spawn(self._connection_request(kind, frame, frame_id))
        else:
            known = sorted(_SESSION_TYPES | (_CONNECTION_TYPES if self.dialect is Dialect.CORRAL else set()))
            what = "missing 'type'" if kind is None else f"unknown message type {kind!r}"
            await self.refuse(ErrorCode.UNKNOWN_TYPE, f"{what}; expected one of {known}", frame_id)

    def _spawn(self, coro: Awaitable[None], session: Session | None = None) -> None:
        self.in_flight += 1
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._done(done, session))

    def _done(self, task: asyncio.Task[None], session: Session | None) -> None:
        self.in_flight -= 1
        self._tasks.discard(task)
        if session is not None:
            session.pending -= 1

    async def _session_request(self, session: Session, kind: str, frame: dict[str, Any], frame_id: Any) -> None:
        if kind == "close":
            await self.manager.close(session)
            self.sessions.pop(session.id, None)
            if session is self.primary:
                self.primary = None
            if self.dialect is Dialect.COMPAT:
                await self.close()
            else:
                await self.send({"type": "closed", "id": frame_id, "session": session.id})
            return
        await self.send_reply(session, frame_id, await self.execute(session, kind, frame, frame_id))
        if self.dialect is Dialect.COMPAT and session.closed:
            # compat: one connection is one session; once the session is gone (deadline, reaper) so is the link.
            await self.close()

    async def close(self) -> None:
        """Close the socket with 1000 (compat's answer to ``close`` and to a fatal error). Idempotent."""
        if not self.open:
            return
        self.open = False
        with contextlib.suppress(Exception):
            await self._link.close(1000)

    async def execute(self, session: Session, kind: str, frame: dict[str, Any], frame_id: Any) -> dict[str, Any]:
        """Run one session request and build its reply frame; corral/1 step/reset replies are kept for replay."""
        return self.answer_now(session, kind, frame, frame_id) or await self._wait_reply(session, kind, frame, frame_id)

    async def _wait_reply(self, session: Session, kind: str, frame: dict[str, Any], frame_id: Any) -> dict[str, Any]:
        """:meth:`execute` for what :meth:`answer_now` cannot answer: a request that may suspend, or the retry
        of one still running."""
        replayable = frame_id is not None and kind in ("reset", "step")
        if replayable:
            previous = session.recall(frame_id)
            if previous is not None:
                assert not isinstance(previous, dict)  # answer_now replays finished replies
                try:
                    return dict(await asyncio.shield(previous))
                except asyncio.CancelledError:
                    if not previous.cancelled():
                        raise
                    # the session closed before the original request finished
                    err = SessionError("the session was closed; open a new one", details={"session": session.id})
                    return self._tagged(error_frame(err.code, err.message, **err.details), session, frame_id)
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            session.remember(frame_id, future, self.manager.config.replay_window)
        if kind == "mcp":
            reply = await self._reply(session, kind, frame, frame_id)  # tools/call takes the session lock itself
        else:
            async with session.lock:
                reply = await self._reply(session, kind, frame, frame_id)
        if replayable and not future.done():  # closing the session cancels the record
            future.set_result(reply)
            if session.replay.get(frame_id) is future:  # from now on kept as is, like answer_now's
                session.replay[frame_id] = reply
        return reply

    def answer_now(self, session: Session, kind: str, frame: dict[str, Any], frame_id: Any) -> dict[str, Any] | None:
        """The reply to a request that needs no waiting, built without suspending: a replayed reply, or a step
        of an idle ``inline`` environment (the hot path: no coroutine, no lock, no future). None otherwise."""
        if frame_id is not None and kind in ("reset", "step"):
            previous = session.recall(frame_id)
            if isinstance(previous, dict):
                return previous
            if previous is not None:
                return None
        if kind != "step" or not self._inline_env or session.lock.locked():
            return None
        try:
            if self.dialect is Dialect.CORRAL:
                _deadline_s(frame.get("deadline_ms"))  # checked; an inline step always runs to completion
            result = self.manager.step_inline(session, frame.get("data"))
            reply = {"type": "observation", "data": envelope(result, self.dialect, self.codec.dump_mode)}
        except Exception as exc:
            reply = self._failure(session, exc)
        reply = self._tagged(reply, session, frame_id)
        if frame_id is not None:
            session.remember(frame_id, reply, self.manager.config.replay_window)
        return reply

    async def _reply(self, session: Session, kind: str, frame: dict[str, Any], frame_id: Any) -> dict[str, Any]:
        manager = self.manager
        corral = self.dialect is Dialect.CORRAL
        try:
            if kind == "step":
                deadline = _deadline_s(frame.get("deadline_ms")) if corral else None
                result = await manager.step(session, frame.get("data"), deadline)
                reply = {"type": "observation", "data": envelope(result, self.dialect, self.codec.dump_mode)}
            elif kind == "reset":
                data = frame.get("data")
                if data is not None and not isinstance(data, dict):
                    raise _bad_reset(data)
                result = await manager.reset(session, data)
                reply = {"type": "observation", "data": envelope(result, self.dialect, self.codec.dump_mode)}
            elif kind == "state":
                state = await manager.state(session)
                reply = {"type": "state", "data": state.model_dump(mode=self.codec.dump_mode)}
            else:
                reply = {"type": "mcp", "data": await handle_jsonrpc(manager, frame.get("data"), session)}
        except Exception as exc:
            reply = self._failure(session, exc)
        return self._tagged(reply, session, frame_id)

    def _failure(self, session: Session, exc: Exception) -> dict[str, Any]:
        """The error frame that answers a request that raised ``exc`` (counted in the metrics)."""
        if isinstance(exc, CorralError):
            self.manager.metrics.errors[exc.code] += 1
            if exc.code == ErrorCode.DEADLINE_EXCEEDED:
                self.sessions.pop(session.id, None)
            return error_frame(exc.code, exc.message, **exc.details)
        # The environment's result has no wire form (e.g. bytes that are not UTF-8, with the JSON codec).
        failure = EnvironmentFailed(
            f"the result could not be encoded as {self.codec.name}: {type(exc).__name__}: {exc}; "
            "use the msgpack codec or JSON-safe fields"
        )
        self.manager.metrics.errors[failure.code] += 1
        return error_frame(failure.code, failure.message)

    def _tagged(self, reply: dict[str, Any], session: Session, frame_id: Any) -> dict[str, Any]:
        if self.dialect is Dialect.CORRAL:
            reply["id"] = frame_id
            if session is not self.primary:
                reply["session"] = session.id
        return reply

    # -- corral/1 connection-level requests ------------------------------------------------------

    async def _connection_request(self, kind: str, frame: dict[str, Any], frame_id: Any) -> None:
        data = frame.get("data") or {}
        try:
            if not isinstance(data, dict):
                raise _bad("'data' must be an object")
            if kind == "open":
                reply = await self._open(data)
            elif kind == "resume":
                reply = self._resume(data)
            else:
                await self._batch(kind[: -len("_many")], data, frame_id)
                return
        except CorralError as err:
            await self.send_error(err, frame_id)
            return
        reply["id"] = frame_id
        await self.send(reply)

    async def _open(self, data: dict[str, Any]) -> dict[str, Any]:
        count = data.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _bad("'count' must be a positive integer")
        limit = self.manager.config.max_sessions_per_connection
        if len(self.sessions) + count > limit:
            raise _bad(f"a connection carries at most {limit} sessions; open another connection")
        wait = data.get("wait_s", 0)
        try:
            wait_s = _wait_s(wait)
        except ValueError:
            raise _bad("'wait_s' must be a number of seconds >= 0") from None
        resets = _open_resets(data.get("reset"), count)
        await self.manager.admit(count, wait_s=wait_s)
        opened: list[Session] = []
        try:
            for _ in range(count):
                opened.append(await self.manager.open(admitted=True))
        except CorralError:
            self.manager.release(count - len(opened) - 1)
            for session in opened:
                await self.manager.close(session)
            raise
        for session in opened:
            self._attach(session)
        granted: list[dict[str, Any]] = [{"session": s.id, "resume_token": s.token} for s in opened]
        if resets is not None:
            # Each session's first observation rides on the reply: one round trip from nothing to an episode.
            async def first(session: Session, options: dict[str, Any]) -> dict[str, Any]:
                reply = await self.execute(session, "reset", {"data": options}, None)
                return {key: value for key, value in reply.items() if key != "id"}

            pairs = list(zip(opened, resets, strict=True))
            if self._inline_env:  # never suspends: a plain loop, no task per session
                results = [await first(session, options) for session, options in pairs]
            else:
                results = list(await asyncio.gather(*(first(session, options) for session, options in pairs)))
            for item, result in zip(granted, results, strict=True):
                item["result"] = result
        return {"type": "opened", "data": {"sessions": granted}}

    def _resume(self, data: dict[str, Any]) -> dict[str, Any]:
        items = data.get("sessions")
        if not isinstance(items, list):
            raise _bad("'sessions' must be a list of {session, resume_token}")
        resumed = []
        for item in items:
            if not isinstance(item, dict):
                raise _bad("each entry of 'sessions' must be {session, resume_token}")
            session = self.manager.resume(str(item.get("session")), str(item.get("resume_token")))
            self._attach(session)
            resumed.append(session.id)
        return {"type": "resumed", "data": {"sessions": resumed}}

    def _claim(self, data: Any) -> tuple[list[Any], list[Session]] | None:
        """The ids a ``close_many`` names and the sessions among them this connection carries, removed
        from it; None for a malformed request."""
        ids = data.get("sessions") if isinstance(data, dict) else None
        if not isinstance(ids, list):
            return None
        claimed = []
        for sid in ids:
            session = self.sessions.pop(str(sid), None)
            if session is not None:
                if session is self.primary:
                    self.primary = None
                claimed.append(session)
        return ids, claimed

    async def _close_many(self, frame_id: Any, claimed: tuple[list[Any], list[Session]] | None) -> None:
        if claimed is None:
            await self.send_error(_bad("'data' must be {\"sessions\": [session ids]}"), frame_id)
            return
        ids, sessions = claimed
        for session in sessions:
            await self.manager.close(session)
        await self.send({"type": "closed", "id": frame_id, "data": {"sessions": ids}})

    async def _batch(self, kind: str, data: dict[str, Any], frame_id: Any) -> None:
        items = data.get("items")
        if not isinstance(items, list):
            raise _bad("'items' must be a list of {session, data}")
        stream = bool(data.get("stream", False))

        async def one(item: Any) -> dict[str, Any]:
            target = self._batch_item(kind, item)
            if isinstance(target, dict):
                return target
            session, sub, sub_id = target
            reply = await self.execute(session, kind, sub, sub_id)
            return _batch_reply(reply, session.id, sub_id)

        if stream:
            async def streamed(item: Any) -> None:
                reply = await one(item)
                reply["id"] = frame_id
                await self.send(reply)

            await asyncio.gather(*(streamed(item) for item in items))
            await self.send({"type": "batch_end", "id": frame_id, "data": {"count": len(items)}})
            return
        if self._inline_env:
            # An inline environment never suspends, so a plain loop gives the same results without a task,
            # a gather slot and a done-callback per item; its steps are answered without a coroutine.
            results = []
            for item in items:
                target = self._batch_item(kind, item)
                if isinstance(target, dict):
                    results.append(target)
                    continue
                session, sub, sub_id = target
                reply = self.answer_now(session, kind, sub, sub_id)
                if reply is None:
                    reply = await self._wait_reply(session, kind, sub, sub_id)
                results.append(_batch_reply(reply, session.id, sub_id))
        else:
            results = await asyncio.gather(*(one(item) for item in items))
        await self.send({"type": "batch", "id": frame_id, "data": {"results": results}})

    def _batch_item(self, kind: str, item: Any) -> tuple[Session, dict[str, Any], Any] | dict[str, Any]:
        """A batch item's session, its request and its id; or the error frame that answers a bad item."""
        sid = item.get("session") if isinstance(item, dict) else None
        session = self.sessions.get(sid) if isinstance(sid, str) else None
        if session is None:
            err = error_frame(ErrorCode.SESSION_NOT_FOUND, f"session {sid!r} is not open on this connection")
            err["session"] = sid
            return err
        sub_id = item.get("id")
        if not _valid_id(sub_id):
            err = error_frame(ErrorCode.VALIDATION_ERROR, _ID_RULE, sub_id, errors=_field_error("id", _ID_RULE))
            err["session"] = sid
            return err
        return session, {"type": kind, "data": item.get("data"), "deadline_ms": item.get("deadline_ms")}, sub_id


def _batch_reply(reply: dict[str, Any], session_id: str, sub_id: Any) -> dict[str, Any]:
    """A session's reply as one result of a batch (a copy: the original may be kept for replay)."""
    reply = dict(reply)
    reply["session"] = session_id
    if sub_id is None:
        reply.pop("id", None)
    return reply


#: Replies up to this size are kept for replay as the bytes that were sent (see Connection.send_reply).
_RECORD_AS_BYTES_MAX = 16 * 1024

_ID_RULE = "'id' must be a string, a number or null"


def _valid_id(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float))


def _field_error(field: str, message: str) -> list[dict[str, Any]]:
    return [{"type": "value_error", "loc": [field], "msg": message}]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _wait_s(value: Any) -> float:
    """An admission wait in seconds: a finite number >= 0 (ValueError otherwise)."""
    if not _finite(value) or value < 0:
        raise ValueError(f"not a wait in seconds: {value!r}")
    return float(value)


def _deadline_s(deadline_ms: Any) -> float | None:
    if deadline_ms is None:
        return None
    if not _finite(deadline_ms) or deadline_ms <= 0:
        rule = "'deadline_ms' must be a positive number of milliseconds"
        raise InvalidAction(rule, details={"errors": _field_error("deadline_ms", rule)})
    return float(deadline_ms) / 1000


def _bad(message: str) -> CorralError:
    return InvalidAction(message, details={"errors": []})


def _open_resets(value: Any, count: int) -> list[dict[str, Any]] | None:
    """An ``open`` frame's ``reset``: None (no reset), one object of reset options for every session, or a
    list of one object per session."""
    if value is None:
        return None
    if isinstance(value, dict):
        return [value] * count
    if isinstance(value, list) and len(value) == count and all(isinstance(v, dict) for v in value):
        return value
    raise _bad("'reset' must be an object of reset options, or a list of one such object per session")


def _bad_reset(data: Any) -> CorralError:
    return _bad(f"reset 'data' must be an object of reset options, got {type(data).__name__}")

