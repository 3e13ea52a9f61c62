"""``EnvClient``: the blocking client. Same methods as :class:`~corral.AsyncEnvClient`, without ``await``.

One request at a time per client (it is not thread-safe; use one client per thread, or the async
client for concurrency, or :meth:`EnvClient.sessions` for many environments over one connection).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic

from websockets.exceptions import ConnectionClosed

from ..errors import ConnectionLost, CorralError
from ..types import Action, StepResult
from ._base import ClientBase, ClientCore, GroupBase, LinkState, ObsT, StateT
from .transport import Connect, Connection, socket_connect

if TYPE_CHECKING:
    from ..runtime import Runtime
    from ..runtime.pool import WarmPool


class EnvClient(ClientBase[ObsT, StateT, Connect]):
    """Talks to one environment server over one WebSocket, blocking. Use it as a context manager::

        with EnvClient(url, observation_type=EchoObservation) as env:
            result = env.reset(seed=0)
            result = env.step({"message": "hi"})
    """

    def _init_link(self) -> None:
        self._ws: Connection | None = None

    @classmethod
    def launch(cls, env: str | None = None, runtime: str | Runtime = "sandbox", *, pool: WarmPool | None = None,
               server: dict[str, Any] | None = None, **options: Any) -> EnvClient[ObsT, StateT]:
        """Start a server for ``env`` in ``runtime`` (``sandbox``, ``docker``, ``subprocess``, ``inprocess``),
        or take one from a warm ``pool``, and return a client that stops (or releases) it when it closes::

            with EnvClient.launch("echo", runtime="docker") as env:
                env.reset()

        ``server``: :class:`~corral.runtime.ServerSpec` fields (``limits``, ``config``, ``secrets``...);
        ``options``: this client's own (``observation_type``, ``codec``...).
        """
        from ..runtime.launched import launch_client

        return launch_client(cls, env, runtime, pool, server or {}, options)

    # -- lifecycle -------------------------------------------------------------------------------

    def connect(self) -> EnvClient[ObsT, StateT]:
        if self.state_ is LinkState.CLOSED:
            raise self._closed_error()
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
        farewell = self._closing()
        if farewell is None or self._ws is None:
            return
        with contextlib.suppress(Exception):
            for data in farewell:
                self._ws.send(data)
        with contextlib.suppress(Exception):
            self._ws.close()

    def _open(self, resume: bool) -> None:
        core = self._core
        connect = self._transport or socket_connect
        ws = connect(core.url, core.subprotocols(), core.headers(resume), self.timeouts.connect)
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
        self._drop_link()
        if not self._core.corral:
            self.state_ = LinkState.CLOSED
            self._lost = self._core.link_lost(cause)
            raise self._lost from cause
        if not self.resume:
            self.state_ = LinkState.CLOSED
            raise ConnectionLost(f"the connection to the server was lost: {cause}") from cause
        last: BaseException = cause
        for delay in self._resume_delays():
            try:
                self._open(resume=True)
                return
            except CorralError as exc:
                last = exc
                if self._resume_hopeless(exc):
                    break
                time.sleep(delay)
        self.state_ = LinkState.CLOSED
        raise self._resume_failed(last) from cause

    def _drop_link(self) -> None:
        """Let go of a link that failed: decode a frame the server sent before closing that nobody has read
        (an OpenEnv server says why it closed in it), then free the link."""
        assert self._ws is not None
        with contextlib.suppress(Exception):
            self._core.decode(self._ws.recv(0))
        with contextlib.suppress(Exception):
            self._ws.close()

    # -- requests --------------------------------------------------------------------------------

    def _request(self, frame: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if self.state_ is LinkState.NEW:
            self.connect()
        if self.state_ is LinkState.CLOSED:
            raise self._refused()
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
                raise self._no_reply(limit) from None
            except ConnectionClosed as exc:
                self._reconnect(exc)
                sent = False  # resend with the same id: the server answers it once, from its record

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[ObsT]:
        core = self._connected()
        return core.step_result(self._request(core.reset_frame(seed, episode_id, options)))

    def step(self, action: Action | dict[str, Any], *, deadline: float | None = None) -> StepResult[ObsT]:
        """Apply one action. ``deadline`` (seconds) is enforced by a corral/1 server."""
        core = self._connected()
        return core.step_result(self._request(core.step_frame(action, deadline), self._step_timeout(deadline)))

    def state(self) -> StateT:
        core = self._connected()
        return core.state_result(self._request(core.state_frame()))  # type: ignore[no-any-return]

    def list_tools(self) -> list[dict[str, Any]]:
        core = self._connected()
        return core.tools_result(self._request(core.list_tools_frame()))

    def call_tool(self, name: str, **arguments: Any) -> Any:
        core = self._connected()
        return core.tool_result(self._request(core.tool_call_frame(name, arguments)))

    def sessions(self, count: int, *, seeds: Sequence[int | None] | None = None, reset: bool = False,
                 **options: Any) -> SessionGroup[ObsT]:
        """Open ``count`` more sessions on this connection, driven together with batched frames.

        With ``seeds``, ``reset=True`` or reset options, each session is also reset in the same round trip
        and ``group.results`` holds the first observations.
        """
        core = self.connect()._core
        resets = core.open_resets(count, reset, seeds, options)
        reply = self._request(core.open_frame(count, resets))
        group = SessionGroup(self, core.on_opened(reply))
        if resets is not None:
            group.results = core.opened_results(reply) or group.reset(seeds=seeds, **options)
        return group

    def _batch(self, kind: str, ids: list[str], payloads: list[Any]) -> list[StepResult[ObsT]]:
        return self._core.batch_results(self._request(self._core.batch_frame(kind, ids, payloads)))

    def _close_sessions(self, ids: list[str]) -> None:
        frame = self._core.close_sessions_frame(ids)
        if self.state_ is LinkState.OPEN:
            self._request(frame)


class SessionGroup(GroupBase["EnvClient[ObsT, Any]"], Generic[ObsT]):
    """Many sessions on one connection; ``reset`` and ``step`` act on all of them in one frame."""

    def reset(self, seeds: Sequence[int | None] | None = None, **options: Any) -> list[StepResult[ObsT]]:
        payloads = self._client._core.reset_payloads(len(self.ids), seeds, options)
        return self._client._batch("reset", self.ids, payloads)

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
