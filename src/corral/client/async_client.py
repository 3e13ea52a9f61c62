"""``AsyncEnvClient``: the async client. Same methods as :class:`~corral.EnvClient`, awaited."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic

from websockets.exceptions import ConnectionClosed

from ..errors import ClientClosed, CorralError, TransportError
from ..types import Action, StepResult
from ._base import ClientBase, ClientCore, GroupBase, LinkState, ObsT, StateT
from .async_transport import within
from .transport import AsyncConnect, AsyncConnection, protocol_connect

if TYPE_CHECKING:
    from ..runtime import Runtime
    from ..runtime.launched import AsyncLaunch
    from ..runtime.pool import WarmPool


class AsyncEnvClient(ClientBase[ObsT, StateT, AsyncConnect]):
    """Talks to one environment server over one WebSocket.

    Speaks corral/1 when the server offers it (request ids, resume after a dropped link, batched
    sessions) and falls back to OpenEnv's dialect otherwise. Use it as an async context manager::

        async with AsyncEnvClient(url, observation_type=EchoObservation) as env:
            result = await env.reset(seed=0)
            result = await env.step({"message": "hi"})
    """

    def _init_link(self) -> None:
        self._ws: AsyncConnection | None = None
        self._pending: dict[Any, tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = {}
        self._fifo: deque[asyncio.Future[dict[str, Any]]] = deque()
        self._compat_lock = asyncio.Lock()
        self._connecting = asyncio.Lock()

    @classmethod
    def launch(cls, env: str | None = None, runtime: str | Runtime = "sandbox", *, pool: WarmPool | None = None,
               server: dict[str, Any] | None = None, **options: Any) -> AsyncLaunch[AsyncEnvClient[ObsT, StateT]]:
        """:meth:`EnvClient.launch <corral.EnvClient.launch>`, for async code: ``await`` the result, or use it
        directly in ``async with``::

            async with AsyncEnvClient.launch("echo", runtime="sandbox") as env:
                await env.reset()
        """
        from ..runtime.launched import AsyncLaunch

        return AsyncLaunch(cls, env, runtime, pool, server or {}, options)

    # -- lifecycle -------------------------------------------------------------------------------

    async def connect(self) -> AsyncEnvClient[ObsT, StateT]:
        async with self._connecting:  # concurrent first requests share one connection
            if self.state_ is LinkState.CLOSED:
                raise self._closed_error()
            if self.state_ is LinkState.NEW:
                await self._open(resume=False)
                self.state_ = LinkState.OPEN
        return self

    async def _connected(self) -> ClientCore[ObsT, StateT]:
        """The core once the link is up: frames depend on the dialect and codec the server chose."""
        if self.state_ is LinkState.NEW:
            await self.connect()
        return self._core

    async def __aenter__(self) -> AsyncEnvClient[ObsT, StateT]:
        return await self.connect()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session(s) and the connection. Idempotent."""
        farewell = self._closing()
        if farewell is None:
            return
        if self._ws is not None:
            with contextlib.suppress(Exception):
                for data in farewell:
                    await self._ws.send(data)
            with contextlib.suppress(Exception):
                await within(self._ws.close(), 2)
        self._fail_all(ClientClosed("the client was closed while this request was waiting"))

    async def _open(self, resume: bool) -> None:
        core = self._core
        connect = self._transport or protocol_connect
        ws = await connect(core.url, core.subprotocols(), core.headers(resume), self.timeouts.connect)
        core.on_accepted(ws.subprotocol)
        try:
            if core.corral:
                core.on_hello(core.decode(await within(ws.recv(), self.timeouts.connect)))
                resume_frame = core.resume_frame() if resume else None
                if resume_frame is not None:
                    await ws.send(core.encode(resume_frame))
                    core.check(core.decode(await within(ws.recv(), self.timeouts.connect)), "resumed")
        except BaseException:
            await ws.close()
            raise
        self._ws = ws
        ws.listen(self._on_message, functools.partial(self._on_closed, ws))

    def _on_message(self, raw: str | bytes) -> None:
        """A message from the server: the reply some request waits for (by id in corral/1, in order in compat)."""
        core = self._core
        try:
            frame = core.decode(raw)
        except CorralError as exc:
            self._fail_all(exc)
            return
        if core.corral:
            entry = self._pending.pop(frame.get("id"), None)
            if entry is not None and not entry[1].done():
                entry[1].set_result(frame)
        elif self._fifo:
            future = self._fifo.popleft()
            if not future.done():
                future.set_result(frame)

    def _on_closed(self, ws: AsyncConnection) -> None:
        """The link ``ws`` closed: resume the session(s) on a new one, or fail what waits."""
        if ws is not self._ws or self.state_ is LinkState.CLOSED:
            return
        if self._core.corral and self.resume:
            asyncio.get_running_loop().create_task(self._reconnect())
        else:
            self.state_ = LinkState.CLOSED
            self._lost = self._core.link_lost()
            self._fail_all(self._lost)

    async def _reconnect(self) -> None:
        self.state_ = LinkState.RECONNECTING
        last: BaseException | None = None
        for delay in self._resume_delays():
            if self.state_ is not LinkState.RECONNECTING:
                break
            try:
                await self._open(resume=True)
            except CorralError as exc:
                last = exc
                if self._resume_hopeless(exc):
                    break
                await asyncio.sleep(delay)
                continue
            self.state_ = LinkState.OPEN
            assert self._ws is not None
            for frame, _ in list(self._pending.values()):
                await self._ws.send(self._core.encode(frame))
            return
        self.state_ = LinkState.CLOSED
        self._fail_all(self._resume_failed(last))

    def _fail_all(self, error: CorralError) -> None:
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        while self._fifo:
            future = self._fifo.popleft()
            if not future.done():
                future.set_exception(error)

    # -- requests --------------------------------------------------------------------------------

    async def _request(self, frame: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if self.state_ is LinkState.NEW:
            await self.connect()
        if self.state_ is LinkState.CLOSED:
            raise self._refused()
        limit = timeout if timeout is not None else self.timeouts.request
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if not self._core.corral:
            async with self._compat_lock:
                self._fifo.append(future)
                await self._send(frame)
                return await self._wait(future, limit, compat=True)
        self._pending[frame["id"]] = (frame, future)
        if self.state_ is LinkState.OPEN:
            await self._send(frame)  # while reconnecting, _reconnect sends every pending frame
        try:
            return await self._wait(future, limit, compat=False)
        finally:
            self._pending.pop(frame["id"], None)

    async def _send(self, frame: dict[str, Any]) -> None:
        assert self._ws is not None
        with contextlib.suppress(ConnectionClosed):  # the reader notices and resumes or fails the request
            await self._ws.send(self._core.encode(frame))

    async def _wait(self, future: asyncio.Future[dict[str, Any]], limit: float | None, compat: bool) -> dict[str, Any]:
        if limit is None:
            return await future
        # A timer that fails the future itself, rather than asyncio.wait_for: the reply then wakes this task
        # directly, without a hop through wait_for's own waiter (one loop iteration less per reply).
        expired = self._no_reply(limit)
        timer = asyncio.get_running_loop().call_later(limit, _expire, future, expired)
        try:
            return await future
        except TransportError as exc:
            if exc is expired and compat:
                # Without request ids a late reply would be taken for the next one: drop the link.
                await self.close()
            raise
        finally:
            timer.cancel()

    async def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[ObsT]:
        core = await self._connected()
        return core.step_result(await self._request(core.reset_frame(seed, episode_id, options)))

    async def step(self, action: Action | dict[str, Any], *, deadline: float | None = None) -> StepResult[ObsT]:
        """Apply one action. ``deadline`` (seconds) is enforced by a corral/1 server."""
        core = await self._connected()
        return core.step_result(await self._request(core.step_frame(action, deadline), self._step_timeout(deadline)))

    async def state(self) -> StateT:
        core = await self._connected()
        return core.state_result(await self._request(core.state_frame()))  # type: ignore[no-any-return]

    async def list_tools(self) -> list[dict[str, Any]]:
        core = await self._connected()
        return core.tools_result(await self._request(core.list_tools_frame()))

    async def call_tool(self, name: str, **arguments: Any) -> Any:
        core = await self._connected()
        return core.tool_result(await self._request(core.tool_call_frame(name, arguments)))

    async def sessions(self, count: int, *, seeds: Sequence[int | None] | None = None, reset: bool = False,
                       **options: Any) -> AsyncSessionGroup[ObsT]:
        """Open ``count`` more sessions on this connection, driven together with batched frames.

        With ``seeds``, ``reset=True`` or reset options, each session is also reset in the same round trip
        and ``group.results`` holds the first observations.
        """
        core = (await self.connect())._core
        resets = core.open_resets(count, reset, seeds, options)
        reply = await self._request(core.open_frame(count, resets))
        group = AsyncSessionGroup(self, core.on_opened(reply))
        if resets is not None:
            group.results = core.opened_results(reply) or await group.reset(seeds=seeds, **options)
        return group

    async def _batch(self, kind: str, ids: list[str], payloads: list[Any]) -> list[StepResult[ObsT]]:
        return self._core.batch_results(await self._request(self._core.batch_frame(kind, ids, payloads)))

    async def _close_sessions(self, ids: list[str]) -> None:
        frame = self._core.close_sessions_frame(ids)
        if self.state_ is LinkState.OPEN:
            await self._request(frame)


def _expire(future: asyncio.Future[Any], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)


class AsyncSessionGroup(GroupBase["AsyncEnvClient[ObsT, Any]"], Generic[ObsT]):
    """Many sessions on one connection; ``reset`` and ``step`` act on all of them in one frame."""

    async def reset(self, seeds: Sequence[int | None] | None = None, **options: Any) -> list[StepResult[ObsT]]:
        payloads = self._client._core.reset_payloads(len(self.ids), seeds, options)
        return await self._client._batch("reset", self.ids, payloads)

    async def step(self, actions: Sequence[Action | dict[str, Any] | None]) -> list[StepResult[ObsT] | None]:
        """Step every session whose action is not None (finished ones are skipped: their slot is None)."""
        core = self._client._core
        ids, payloads, positions = core.batch_actions(self.ids, actions)
        results = await self._client._batch("step", ids, payloads) if ids else []
        return core.scatter(len(self.ids), positions, results)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client._close_sessions(self.ids)

    async def __aenter__(self) -> AsyncSessionGroup[ObsT]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
