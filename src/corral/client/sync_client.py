"""``EnvClient``: the blocking client. Same methods as :class:`~corral.AsyncEnvClient`, without ``await``.

One request at a time per client (it is not thread-safe; use one client per thread, or the async
client for concurrency, or :meth:`EnvClient.sessions` for many environments over one connection).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Generic

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from ..errors import ClientClosed, ConnectionLost, CorralError, TransportError
from ..types import Action, StepResult
from ._base import ClientCore, ObsT, StateT, Timeouts, handshake_error
from .async_client import LinkState

#: websockets >= 17.1 warns when a connection opened without ``with`` is used, unless it is opened as legacy.
_DIRECT_CONNECT: dict[str, Any] = {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}


class EnvClient(Generic[ObsT, StateT]):
    """Talks to one environment server over one WebSocket, blocking. Use it as a context manager::

        with EnvClient(url, observation_type=EchoObservation) as env:
            result = env.reset(seed=0)
            result = env.step({"message": "hi"})
    """

    def __init__(
        self,
        url: str,
        *,
        action_type: type[Action] | None = None,
        observation_type: type[ObsT] | None = None,
        state_type: type[StateT] | None = None,
        token: str | None = None,
        codec: str = "json",
        timeouts: Timeouts | None = None,
        resume: bool = True,
        admission_wait: float | None = None,
        open_session: bool = True,
    ) -> None:
        self._core: ClientCore[ObsT, StateT] = ClientCore(
            url, action_type=action_type, observation_type=observation_type, state_type=state_type,
            token=token, codec=codec, open_session=open_session, admission_wait=admission_wait,
        )
        self.timeouts = timeouts or Timeouts()
        self.resume = resume
        self.state_ = LinkState.NEW
        self._ws: ClientConnection | None = None
        self._lost: CorralError | None = None  # why the server closed a compat link, for later calls

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def dialect(self) -> str:
        return "corral/1" if self._core.corral else "compat"

    @property
    def session_id(self) -> str | None:
        return self._core.session_id

    @property
    def hello(self) -> dict[str, Any]:
        return self._core.hello

    def connect(self) -> EnvClient[ObsT, StateT]:
        if self.state_ is LinkState.CLOSED:
            raise ClientClosed("this client is closed; create a new one")
        if self.state_ is LinkState.NEW:
            self._open(resume=False)
            self.state_ = LinkState.OPEN
        return self

    def _connected(self) -> ClientCore[ObsT, StateT]:
        """The core once the link is up: frames depend on the dialect and codec the server chose."""
        if self.state_ is LinkState.NEW:
            self.connect()
        return self._core

    def __enter__(self) -> EnvClient[ObsT, StateT]:
        return self.connect()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the session(s) and the connection. Idempotent."""
        self._lost = None
        if self.state_ is LinkState.CLOSED:
            return
        self.state_ = LinkState.CLOSED
        ws = self._ws
        if ws is not None:
            core = self._core
            with contextlib.suppress(Exception):
                if core.corral and core.extra_sessions:
                    ws.send(core.encode(core.request("close_many", {"sessions": list(core.extra_sessions)})))
                if core.session_id or not core.corral:
                    ws.send(core.encode(core.request("close")))
            with contextlib.suppress(Exception):
                ws.close()

    def _open(self, resume: bool) -> None:
        core = self._core
        try:
            ws = connect(
                core.url,
                subprotocols=core.subprotocols(),  # type: ignore[arg-type]
                additional_headers=core.headers(resume),
                open_timeout=self.timeouts.connect,
                max_size=None,
                compression=None,
                **_DIRECT_CONNECT,
            )
        except Exception as exc:
            raise handshake_error(core.url, exc) from exc
        core.on_accepted(ws.subprotocol)
        try:
            if core.corral:
                core.on_hello(core.decode(ws.recv(self.timeouts.connect)))
                resume_frame = core.resume_frame() if resume else None
                if resume_frame is not None:
                    ws.send(core.encode(resume_frame))
                    core.check(core.decode(ws.recv(self.timeouts.connect)), "resumed")
        except BaseException:
            ws.close()
            raise
        self._ws = ws

    def _reconnect(self, cause: BaseException) -> None:
        if not self._core.corral:
            self.state_ = LinkState.CLOSED
            self._read_farewell()
            self._lost = self._core.link_lost(cause)
            raise self._lost from cause
        if not self.resume:
            self.state_ = LinkState.CLOSED
            raise ConnectionLost(f"the connection to the server was lost: {cause}") from cause
        lease = float(self._core.hello.get("limits", {}).get("lease_s", self.timeouts.resume))
        deadline = time.monotonic() + min(self.timeouts.resume, lease)
        delay = 0.02
        last: BaseException = cause
        while time.monotonic() < deadline:
            try:
                self._open(resume=True)
                return
            except CorralError as exc:
                last = exc
                if exc.code in ("RESUME_REJECTED", "SESSION_ERROR", "UNAUTHORIZED"):
                    break
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        self.state_ = LinkState.CLOSED
        raise ConnectionLost(f"the connection dropped and the session could not be resumed: {last}") from cause

    def _read_farewell(self) -> None:
        """Decode a frame the server sent before closing that nobody has read (it may say why)."""
        assert self._ws is not None
        with contextlib.suppress(Exception):
            self._core.decode(self._ws.recv(0))

    # -- requests --------------------------------------------------------------------------------

    def _request(self, frame: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if self.state_ is LinkState.NEW:
            self.connect()
        if self.state_ is LinkState.CLOSED:
            if self._lost is not None:
                raise self._lost.with_traceback(None)
            raise ClientClosed("this client is closed; create a new one")
        core = self._core
        limit = timeout if timeout is not None else self.timeouts.request
        until = None if limit is None else time.monotonic() + limit
        data = core.encode(frame)
        frame_id = frame.get("id")
        sent = False
        while True:
            assert self._ws is not None
            try:
                if not sent:
                    self._ws.send(data)
                    sent = True
                while True:
                    remaining = None if until is None else until - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError
                    reply = core.decode(self._ws.recv(remaining))
                    if not core.corral or reply.get("id") == frame_id:
                        return reply
                    # a late reply to an earlier request that timed out: never taken for this one
            except TimeoutError:
                if not core.corral:
                    self.close()  # without request ids a late reply would desync every later one
                raise TransportError(
                    f"no reply within {limit}s; the server may be overloaded or the environment hung"
                ) from None
            except ConnectionClosed as exc:
                self._reconnect(exc)
                sent = False  # resend with the same id: the server answers it once, from its record

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[ObsT]:
        core = self._connected()
        reply = self._request(core.request("reset", core.reset_data(seed, episode_id, options)))
        return core.result(core.check(reply, "observation"))

    def step(self, action: Action | dict[str, Any], *, deadline: float | None = None) -> StepResult[ObsT]:
        """Apply one action. ``deadline`` (seconds) is enforced by a corral/1 server."""
        core = self._connected()
        frame = core.request("step", core.action_data(action), deadline_ms=core.deadline_ms(deadline))
        reply = self._request(frame, None if deadline is None else deadline + self.timeouts.connect)
        return core.result(core.check(reply, "observation"))

    def state(self) -> StateT:
        core = self._connected()
        return core.state(core.check(self._request(core.request("state")), "state"))  # type: ignore[no-any-return]

    def list_tools(self) -> list[dict[str, Any]]:
        core = self._connected()
        reply = self._request(core.request("mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        return list(core.mcp_result(core.check(reply, "mcp"))["tools"])

    def call_tool(self, name: str, **arguments: Any) -> Any:
        core = self._connected()
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        result = core.mcp_result(core.check(self._request(core.request("mcp", rpc)), "mcp"))
        if result.get("isError"):
            raise CorralError(str(result["content"][0]["text"]))
        return result.get("data")

    def sessions(self, count: int) -> SessionGroup[ObsT]:
        """Open ``count`` more sessions on this connection, driven together with batched frames."""
        core = self._core
        self.connect()
        core.require_corral("sessions()")
        reply = core.check(self._request(core.request("open", {"count": count})), "opened")
        ids = []
        for item in reply["sessions"]:
            core.extra_sessions[item["session"]] = item["resume_token"]
            ids.append(item["session"])
        return SessionGroup(self, ids)

    def _batch(self, kind: str, ids: list[str], payloads: list[Any]) -> list[StepResult[ObsT]]:
        core = self._core
        items = [{"session": sid, "data": data, "id": next(core.ids)} for sid, data in zip(ids, payloads, strict=True)]
        reply = self._request(core.request(f"{kind}_many", {"items": items}))
        return core.batch_results(core.check(reply, "batch"))

    def _close_sessions(self, ids: list[str]) -> None:
        core = self._core
        for sid in ids:
            core.extra_sessions.pop(sid, None)
        if self.state_ is LinkState.OPEN:
            self._request(core.request("close_many", {"sessions": ids}))


class SessionGroup(Generic[ObsT]):
    """Many sessions on one connection; ``reset`` and ``step`` act on all of them in one frame."""

    def __init__(self, client: EnvClient[ObsT, Any], ids: list[str]) -> None:
        self._client = client
        self.ids = ids
        self._closed = False

    def __len__(self) -> int:
        return len(self.ids)

    def reset(self, seeds: list[int | None] | None = None, **options: Any) -> list[StepResult[ObsT]]:
        seeds = seeds or [None] * len(self.ids)
        core = self._client._core
        return self._client._batch("reset", self.ids, [core.reset_data(s, None, options) for s in seeds])

    def step(self, actions: Sequence[Action | dict[str, Any] | None]) -> list[StepResult[ObsT] | None]:
        """Step every session whose action is not None (finished ones are skipped: their slot is None)."""
        core = self._client._core
        ids, payloads, positions = core.batch_actions(self.ids, actions)
        return core.scatter(len(self.ids), positions, self._client._batch("step", ids, payloads) if ids else [])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client._close_sessions(self.ids)

    def __enter__(self) -> SessionGroup[ObsT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
