"""``AsyncEnvClient``: the async client. Same methods as :class:`~corral.EnvClient`, awaited."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from enum import Enum
from types import TracebackType
from typing import Any, Generic

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ..errors import ClientClosed, ConnectionLost, CorralError, TransportError
from ..types import Action, StepResult
from ._base import ClientCore, ObsT, StateT, Timeouts, handshake_error


class LinkState(str, Enum):
    NEW = "new"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class AsyncEnvClient(Generic[ObsT, StateT]):
    """Talks to one environment server over one WebSocket.

    Speaks corral/1 when the server offers it (request ids, resume after a dropped link, batched
    sessions) and falls back to OpenEnv's dialect otherwise. Use it as an async context manager::

        async with AsyncEnvClient(url, observation_type=EchoObservation) as env:
            result = await env.reset(seed=0)
            result = await env.step({"message": "hi"})
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
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[Any, tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = {}
        self._fifo: deque[asyncio.Future[dict[str, Any]]] = deque()
        self._compat_lock = asyncio.Lock()
        self._link_up = asyncio.Event()
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

    async def connect(self) -> AsyncEnvClient[ObsT, StateT]:
        if self.state_ is LinkState.CLOSED:
            raise ClientClosed("this client is closed; create a new one")
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
        self._lost = None
        if self.state_ is LinkState.CLOSED:
            return
        self.state_ = LinkState.CLOSED
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                if self._core.corral and self._core.extra_sessions:
                    await ws.send(self._core.encode(self._core.request(
                        "close_many", {"sessions": list(self._core.extra_sessions)})))
                if self._core.session_id or not self._core.corral:
                    await ws.send(self._core.encode(self._core.request("close")))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        self._fail_all(ClientClosed("the client was closed while this request was waiting"))

    async def _open(self, resume: bool) -> None:
        core = self._core
        try:
            ws = await connect(
                core.url,
                subprotocols=core.subprotocols(),  # type: ignore[arg-type]
                additional_headers=core.headers(resume),
                open_timeout=self.timeouts.connect,
                max_size=None,
                compression=None,
                ping_interval=20,
                ping_timeout=20,
            )
        except Exception as exc:
            raise handshake_error(core.url, exc) from exc
        core.on_accepted(ws.subprotocol)
        try:
            if core.corral:
                core.on_hello(core.decode(await asyncio.wait_for(ws.recv(), self.timeouts.connect)))
                resume_frame = core.resume_frame() if resume else None
                if resume_frame is not None:
                    await ws.send(core.encode(resume_frame))
                    core.check(core.decode(await asyncio.wait_for(ws.recv(), self.timeouts.connect)), "resumed")
        except BaseException:
            await ws.close()
            raise
        self._ws = ws
        self._link_up.set()
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))

    async def _read(self, ws: ClientConnection) -> None:
        core = self._core
        try:
            async for raw in ws:
                frame = core.decode(raw)
                if core.corral:
                    entry = self._pending.pop(frame.get("id"), None)
                    if entry is not None and not entry[1].done():
                        entry[1].set_result(frame)
                elif self._fifo:
                    future = self._fifo.popleft()
                    if not future.done():
                        future.set_result(frame)
        except ConnectionClosed:
            pass
        except CorralError as exc:
            self._fail_all(exc)
        if self.state_ is LinkState.CLOSED:
            return
        self._link_up.clear()
        if core.corral and self.resume:
            asyncio.get_running_loop().create_task(self._reconnect())
        else:
            self.state_ = LinkState.CLOSED
            self._lost = core.link_lost()
            self._fail_all(self._lost)

    async def _reconnect(self) -> None:
        self.state_ = LinkState.RECONNECTING
        lease = float(self._core.hello.get("limits", {}).get("lease_s", self.timeouts.resume))
        deadline = time.monotonic() + min(self.timeouts.resume, lease)
        delay = 0.02
        last: BaseException | None = None
        while time.monotonic() < deadline and self.state_ is LinkState.RECONNECTING:
            try:
                await self._open(resume=True)
            except CorralError as exc:
                last = exc
                if exc.code in ("RESUME_REJECTED", "SESSION_ERROR", "UNAUTHORIZED"):
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self.state_ = LinkState.OPEN
            assert self._ws is not None
            for frame, _ in list(self._pending.values()):
                await self._ws.send(self._core.encode(frame))
            return
        self.state_ = LinkState.CLOSED
        self._fail_all(ConnectionLost(f"the connection dropped and the session could not be resumed: {last}"))

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
            if self._lost is not None:
                raise self._lost.with_traceback(None)
            raise ClientClosed("this client is closed; create a new one")
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
        try:
            return await asyncio.wait_for(future, limit)
        except asyncio.TimeoutError:
            if compat:
                # Without request ids a late reply would be taken for the next one: drop the link.
                await self.close()
            raise TransportError(
                f"no reply within {limit}s; the server may be overloaded or the environment hung"
            ) from None

    async def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[ObsT]:
        core = await self._connected()
        reply = await self._request(core.request("reset", core.reset_data(seed, episode_id, options)))
        return core.result(core.check(reply, "observation"))

    async def step(self, action: Action | dict[str, Any], *, deadline: float | None = None) -> StepResult[ObsT]:
        """Apply one action. ``deadline`` (seconds) is enforced by a corral/1 server."""
        core = await self._connected()
        frame = core.request("step", core.action_data(action), deadline_ms=core.deadline_ms(deadline))
        reply = await self._request(frame, None if deadline is None else deadline + self.timeouts.connect)
        return core.result(core.check(reply, "observation"))

    async def state(self) -> StateT:
        core = await self._connected()
        reply = await self._request(core.request("state"))
        return core.state(core.check(reply, "state"))  # type: ignore[no-any-return]

    async def list_tools(self) -> list[dict[str, Any]]:
        core = await self._connected()
        reply = await self._request(core.request("mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        return list(core.mcp_result(core.check(reply, "mcp"))["tools"])

    async def call_tool(self, name: str, **arguments: Any) -> Any:
        core = await self._connected()
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        result = core.mcp_result(core.check(await self._request(core.request("mcp", rpc)), "mcp"))
        if result.get("isError"):
            raise CorralError(str(result["content"][0]["text"]))
        return result.get("data")

    async def sessions(self, count: int) -> AsyncSessionGroup[ObsT]:
        """Open ``count`` more sessions on this connection, driven together with batched frames."""
        core = self._core
        await self.connect()
        core.require_corral("sessions()")
        reply = core.check(await self._request(core.request("open", {"count": count})), "opened")
        ids = []
        for item in reply["sessions"]:
            core.extra_sessions[item["session"]] = item["resume_token"]
            ids.append(item["session"])
        return AsyncSessionGroup(self, ids)

    async def _batch(self, kind: str, ids: list[str], payloads: list[Any]) -> list[StepResult[ObsT]]:
        core = self._core
        items = [{"session": sid, "data": data, "id": next(core.ids)} for sid, data in zip(ids, payloads, strict=True)]
        reply = await self._request(core.request(f"{kind}_many", {"items": items}))
        return core.batch_results(core.check(reply, "batch"))

    async def _close_sessions(self, ids: list[str]) -> None:
        core = self._core
        for sid in ids:
            core.extra_sessions.pop(sid, None)
        if self.state_ is LinkState.OPEN:
            await self._request(core.request("close_many", {"sessions": ids}))


class AsyncSessionGroup(Generic[ObsT]):
    """Many sessions on one connection; ``reset`` and ``step`` act on all of them in one frame."""

    def __init__(self, client: AsyncEnvClient[ObsT, Any], ids: list[str]) -> None:
        self._client = client
        self.ids = ids
        self._closed = False

    def __len__(self) -> int:
        return len(self.ids)

    async def reset(self, seeds: list[int | None] | None = None, **options: Any) -> list[StepResult[ObsT]]:
        seeds = seeds or [None] * len(self.ids)
        core = self._client._core
        payloads = [core.reset_data(seed, None, options) for seed in seeds]
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



