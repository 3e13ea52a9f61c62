"""In-process clients: the real server app and the real client logic, with no sockets in between.

``AsyncInProcessClient`` drives the ASGI app of :func:`corral.server.create_app` through its ``receive``
and ``send`` callables, on the caller's event loop; ``InProcessClient`` does the same from blocking
code, on an event loop in a private thread. Both have the method names of
:class:`~corral.client.EnvClient` and build and read every frame with the same
:class:`~corral.client._base.ClientCore`, so what passes here passes over a socket::

    with InProcessClient(EchoEnvironment) as env:
        env.reset()
        env.step({"message": "hi"})
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, cast

from websockets.exceptions import InvalidStatus

from ..client import LinkState, Timeouts
from ..client._base import ClientCore, ObsT, StateT, handshake_error
from ..environment import AsyncEnvironment, Environment
from ..envs import resolve
from ..errors import ClientClosed, ConnectionLost, CorralError, TransportError, UsageError
from ..server import CorralApp, ServerConfig, create_app
from ..types import Action, StepResult
from ._asgi import ASGIWebSocket, Lifespan
from ._loop_thread import LoopThread

T = TypeVar("T")
Dialect = Literal["corral/1", "compat"]
#: An environment class; its observation and state types become the client's result types.
EnvType = type[Environment[Any, ObsT, StateT]] | type[AsyncEnvironment[Any, ObsT, StateT]]

#: Stands in for a server URL in error messages; nothing is ever dialled.
_URL = "ws://corral.inprocess/ws"


class AsyncInProcessClient(Generic[ObsT, StateT]):
    """An :class:`~corral.client.AsyncEnvClient` whose server is an app in this process.

    Contract:

    - each client owns one app for ``env`` (a class, a built-in name or ``"module:Class"``); the app's
      lifespan starts on :meth:`connect` and ends in :meth:`close`, which returns only after every
      environment instance the client opened has been closed;
    - ``dialect="corral/1"`` (the default) offers the ``corral.v1`` subprotocol; ``"compat"`` offers none
      and speaks OpenEnv's dialect, one request at a time;
    - results are typed with the environment's own observation and state types unless others are
      given; actions go to the server as given (``action_type`` validates dicts locally first);
    - errors raise the same :mod:`corral.errors` classes as over a socket; there is no link to drop, so
      no resume: if the app itself fails, waiting requests raise :class:`~corral.errors.ConnectionLost`.
    """

    def __init__(
        self,
        env: EnvType[ObsT, StateT] | str,
        config: ServerConfig | None = None,
        *,
        action_type: type[Action] | None = None,
        observation_type: type[ObsT] | None = None,
        state_type: type[StateT] | None = None,
        token: str | None = None,
        codec: str = "json",
        dialect: Dialect = "corral/1",
        timeouts: Timeouts | None = None,
    ) -> None:
        if dialect not in ("corral/1", "compat"):
            raise UsageError(f"dialect must be 'corral/1' or 'compat', not {dialect!r}")
        env_cls = resolve(env) if isinstance(env, str) else env
        self.app: CorralApp = create_app(env_cls, config)
        self._core: ClientCore[ObsT, StateT] = ClientCore(
            _URL,
            action_type=action_type,
            observation_type=observation_type or cast("type[ObsT]", env_cls.observation_type),
            state_type=state_type or cast("type[StateT]", env_cls.state_type),
            token=token,
            codec=codec,
        )
        self._offer_corral = dialect == "corral/1"
        self.timeouts = timeouts or Timeouts()
        self.state_ = LinkState.NEW
        self._closed = False
        self._lifespan = Lifespan(self.app)
        self._connecting = asyncio.Lock()
        self._compat_lock = asyncio.Lock()
        self._ws: ASGIWebSocket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self._fifo: deque[asyncio.Future[dict[str, Any]]] = deque()

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

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    async def connect(self) -> AsyncInProcessClient[ObsT, StateT]:
        """Start the app and open the connection (and its session). Idempotent until closed."""
        async with self._connecting:
            if self._closed or self.state_ is LinkState.CLOSED:
                raise ClientClosed("this client is closed; create a new one")
            if self.state_ is LinkState.NEW:
                await self._lifespan.startup()
                try:
                    await self._open()
                except BaseException:
                    await self._lifespan.shutdown()
                    raise
                self.state_ = LinkState.OPEN
        return self

    async def __aenter__(self) -> AsyncInProcessClient[ObsT, StateT]:
        return await self.connect()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session(s), the connection and the app. Idempotent."""
        if self._closed:
            return
        self._closed = True
        was_open = self.state_ is LinkState.OPEN
        self.state_ = LinkState.CLOSED
        ws = self._ws
        if ws is not None:
            if was_open:
                with contextlib.suppress(CorralError, asyncio.TimeoutError):
                    await self._close_on_server(ws)
            await ws.close(timeout=self.timeouts.connect)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._fail_all(ClientClosed("the client was closed while this request was waiting"))
        await self._lifespan.shutdown(self.timeouts.connect)

    async def _close_on_server(self, ws: ASGIWebSocket) -> None:
        core = self._core
        limit = self.timeouts.connect
        if core.corral:
            if core.extra_sessions:
                await self._exchange(core.request("close_many", {"sessions": list(core.extra_sessions)}), limit)
            if core.session_id:
                await self._exchange(core.request("close"), limit)
            return
        await ws.send(core.encode(core.request("close")))  # no reply: the app closes the socket after the session
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self._reader), limit)

    async def _open(self) -> None:
        core = self._core
        try:
            ws = await ASGIWebSocket.connect(
                self.app,
                subprotocols=core.subprotocols() if self._offer_corral else (),
                headers=core.headers(resume=False),
                timeout=self.timeouts.connect,
            )
        except (InvalidStatus, TimeoutError) as exc:
            raise handshake_error(core.url, exc) from exc
        core.on_accepted(ws.subprotocol)
        if core.corral:
            try:
                core.on_hello(core.decode(await asyncio.wait_for(ws.recv(), self.timeouts.connect)))
            except BaseException:
                await ws.close()
                raise
        self._ws = ws
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))

    async def _read(self, ws: ASGIWebSocket) -> None:
        core = self._core
        try:
            while True:
                frame = core.decode(await ws.recv())
                future = self._pending.pop(frame.get("id"), None) if core.corral else (
                    self._fifo.popleft() if self._fifo else None
                )
                if future is not None and not future.done():
                    future.set_result(frame)
        except CorralError as exc:
            if not self._closed:
                self.state_ = LinkState.CLOSED
                self._fail_all(exc if isinstance(exc, ConnectionLost) else ConnectionLost(str(exc)))

    def _fail_all(self, error: CorralError) -> None:
        waiting = [*self._pending.values(), *self._fifo]
        self._pending.clear()
        self._fifo.clear()
        for future in waiting:
            if not future.done():
                future.set_exception(error)

    # -- requests --------------------------------------------------------------------------------

    async def _request(self, frame: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if self.state_ is LinkState.NEW:
            await self.connect()
        if self.state_ is not LinkState.OPEN:
            raise ClientClosed("this client is closed; create a new one")
        return await self._exchange(frame, timeout)

    async def _exchange(self, frame: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        assert self._ws is not None
        core = self._core
        limit = timeout if timeout is not None else self.timeouts.request
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if not core.corral:
            async with self._compat_lock:
                self._fifo.append(future)
                await self._ws.send(core.encode(frame))
                return await self._wait(future, limit, compat=True)
        self._pending[frame["id"]] = future
        try:
            await self._ws.send(core.encode(frame))
            return await self._wait(future, limit, compat=False)
        finally:
            self._pending.pop(frame["id"], None)

    async def _wait(self, future: asyncio.Future[dict[str, Any]], limit: float | None, compat: bool) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(future, limit)
        except asyncio.TimeoutError:
            if compat:
                await self.close()  # without request ids a late reply would be taken for the next one
            raise TransportError(f"no reply within {limit}s; the environment may be hung") from None

    async def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[ObsT]:
        core = self._core
        reply = await self._request(core.request("reset", core.reset_data(seed, episode_id, options)))
        return core.result(core.check(reply, "observation"))

    async def step(self, action: Action | dict[str, Any], *, deadline: float | None = None) -> StepResult[ObsT]:
        """Apply one action. ``deadline`` (seconds) is enforced by the app in corral/1."""
        core = self._core
        frame = core.request("step", core.action_data(action), deadline_ms=core.deadline_ms(deadline))
        reply = await self._request(frame, None if deadline is None else deadline + self.timeouts.connect)
        return core.result(core.check(reply, "observation"))

    async def state(self) -> StateT:
        core = self._core
        reply = await self._request(core.request("state"))
        return cast("StateT", core.state(core.check(reply, "state")))

    async def list_tools(self) -> list[dict[str, Any]]:
        core = self._core
        reply = await self._request(core.request("mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        return list(core.mcp_result(core.check(reply, "mcp"))["tools"])

    async def call_tool(self, name: str, **arguments: Any) -> Any:
        core = self._core
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        result = core.mcp_result(core.check(await self._request(core.request("mcp", rpc)), "mcp"))
        if result.get("isError"):
            raise CorralError(str(result["content"][0]["text"]))
        return result.get("data")

    async def sessions(self, count: int) -> AsyncInProcessSessionGroup[ObsT]:
        """Open ``count`` more sessions on this connection, driven together with batched frames."""
        core = self._core
        await self.connect()
        core.require_corral("sessions()")
        reply = core.check(await self._request(core.request("open", {"count": count})), "opened")
        ids = []
        for item in reply["sessions"]:
            core.extra_sessions[item["session"]] = item["resume_token"]
            ids.append(item["session"])
        return AsyncInProcessSessionGroup(self, ids)

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


class AsyncInProcessSessionGroup(Generic[ObsT]):
    """Many sessions on one in-process connection; ``reset`` and ``step`` act on all of them in one frame."""

    def __init__(self, client: AsyncInProcessClient[ObsT, Any], ids: list[str]) -> None:
        self._client = client
        self.ids = ids
        self._closed = False

    def __len__(self) -> int:
        return len(self.ids)

    async def reset(self, seeds: list[int | None] | None = None, **options: Any) -> list[StepResult[ObsT]]:
        core = self._client._core
        payloads = [core.reset_data(seed, None, options) for seed in seeds or [None] * len(self.ids)]
        return await self._client._batch("reset", self.ids, payloads)

    async def step(self, actions: list[Action | dict[str, Any]]) -> list[StepResult[ObsT]]:
        core = self._client._core
        return await self._client._batch("step", self.ids, [core.action_data(a) for a in actions])

    async def close(self) -> None:
        """Close these sessions. Idempotent."""
        if not self._closed:
            self._closed = True
            await self._client._close_sessions(self.ids)

    async def __aenter__(self) -> AsyncInProcessSessionGroup[ObsT]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class InProcessClient(Generic[ObsT, StateT]):
    """The blocking :class:`AsyncInProcessClient`: same arguments, same methods, no ``await``.

    The app runs on an event loop in a private thread, started on first use and stopped by
    :meth:`close`, so the client also works from code that already runs inside an event loop.
    """

    def __init__(
        self,
        env: EnvType[ObsT, StateT] | str,
        config: ServerConfig | None = None,
        *,
        action_type: type[Action] | None = None,
        observation_type: type[ObsT] | None = None,
        state_type: type[StateT] | None = None,
        token: str | None = None,
        codec: str = "json",
        dialect: Dialect = "corral/1",
        timeouts: Timeouts | None = None,
    ) -> None:
        self._client: AsyncInProcessClient[ObsT, StateT] = AsyncInProcessClient(
            env, config, action_type=action_type, observation_type=observation_type, state_type=state_type,
            token=token, codec=codec, dialect=dialect, timeouts=timeouts,
        )
        self.app = self._client.app
        self._thread: LoopThread | None = None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._client.closed:
            coro.close()
            raise ClientClosed("this client is closed; create a new one")
        if self._thread is None:
            self._thread = LoopThread()
        return self._thread.run(coro)

    @property
    def dialect(self) -> str:
        return self._client.dialect

    @property
    def session_id(self) -> str | None:
        return self._client.session_id

    @property
    def hello(self) -> dict[str, Any]:
        return self._client.hello

    @property
    def state_(self) -> LinkState:
        return self._client.state_

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._client.closed

    def connect(self) -> InProcessClient[ObsT, StateT]:
        self._run(self._client.connect())
        return self

    def __enter__(self) -> InProcessClient[ObsT, StateT]:
        return self.connect()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the session(s), the connection, the app and the private loop. Idempotent."""
        if self._client.closed:
            return
        thread = self._thread or LoopThread()
        try:
            thread.run(self._client.close())
        finally:
            thread.close()

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[ObsT]:
        return self._run(self._client.reset(seed, episode_id, **options))

    def step(self, action: Action | dict[str, Any], *, deadline: float | None = None) -> StepResult[ObsT]:
        """Apply one action. ``deadline`` (seconds) is enforced by the app in corral/1."""
        return self._run(self._client.step(action, deadline=deadline))

    def state(self) -> StateT:
        return self._run(self._client.state())

    def list_tools(self) -> list[dict[str, Any]]:
        return self._run(self._client.list_tools())

    def call_tool(self, name: str, **arguments: Any) -> Any:
        return self._run(self._client.call_tool(name, **arguments))

    def sessions(self, count: int) -> InProcessSessionGroup[ObsT]:
        """Open ``count`` more sessions on this connection, driven together with batched frames."""
        return InProcessSessionGroup(self, self._run(self._client.sessions(count)))


class InProcessSessionGroup(Generic[ObsT]):
    """The blocking :class:`AsyncInProcessSessionGroup`."""

    def __init__(self, client: InProcessClient[ObsT, Any], group: AsyncInProcessSessionGroup[ObsT]) -> None:
        self._client = client
        self._group = group
        self.ids = group.ids

    def __len__(self) -> int:
        return len(self._group)

    def reset(self, seeds: list[int | None] | None = None, **options: Any) -> list[StepResult[ObsT]]:
        return self._client._run(self._group.reset(seeds, **options))

    def step(self, actions: list[Action | dict[str, Any]]) -> list[StepResult[ObsT]]:
        return self._client._run(self._group.step(actions))

    def close(self) -> None:
        """Close these sessions. Idempotent."""
        if not self._client.closed:
            self._client._run(self._group.close())

    def __enter__(self) -> InProcessSessionGroup[ObsT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
