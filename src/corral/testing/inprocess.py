"""In-process clients: the real clients and the real server app, with no sockets in between.

``AsyncInProcessClient`` is an :class:`~corral.AsyncEnvClient` whose transport hands frames to the ASGI
app of :func:`corral.server.create_app` on the caller's event loop; ``InProcessClient`` is an
:class:`~corral.EnvClient` whose transport does the same on an event loop in a private thread. Every
frame is built, sent and read by the same code as over a socket, so what passes here passes there::

    with InProcessClient(EchoEnvironment) as env:
        env.reset()
        env.step({"message": "hi"})
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

from websockets.exceptions import InvalidStatus

from ..client import AsyncEnvClient, AsyncSessionGroup, EnvClient, SessionGroup, Timeouts
from ..client._base import ClientBase, ObsT, StateT, TransportT
from ..client.transport import AsyncConnect, Connect, handshake_error
from ..environment import AsyncEnvironment, Environment
from ..envs import resolve
from ..errors import UsageError
from ..server import CorralApp, ServerConfig, create_app
from ..types import Action
from ._asgi import ASGIWebSocket, Lifespan
from ._loop_thread import LoopThread

Dialect = Literal["corral/1", "compat"]
#: An environment class; its observation and state types become the client's result types.
EnvType = type[Environment[Any, ObsT, StateT]] | type[AsyncEnvironment[Any, ObsT, StateT]]

#: The in-process session groups are the real ones.
InProcessSessionGroup = SessionGroup
AsyncInProcessSessionGroup = AsyncSessionGroup

#: Stands in for a server URL in error messages; nothing is ever dialled.
_URL = "ws://corral.inprocess/ws"


class _InProcessServer:
    """The app of one in-process client, and the transports that reach it.

    The app's lifespan starts with the first connection and ends in :meth:`stop`, which returns once
    every session (and so every environment instance) is closed. ``dialect="compat"`` offers no
    subprotocol, so the app speaks OpenEnv's dialect. The blocking transport runs the app on a private
    loop thread.
    """

    def __init__(self, env: EnvType[Any, Any] | str, config: ServerConfig | None, dialect: Dialect) -> None:
        if dialect not in ("corral/1", "compat"):
            raise UsageError(f"dialect must be 'corral/1' or 'compat', not {dialect!r}")
        self.env_cls = resolve(env) if isinstance(env, str) else env
        self.app: CorralApp = create_app(self.env_cls, config)
        self._offer_corral = dialect == "corral/1"
        self._lifespan = Lifespan(self.app)
        self._started = False
        self._sockets: list[ASGIWebSocket] = []
        self._thread: LoopThread | None = None

    async def connect(self, url: str, subprotocols: Sequence[str], headers: Mapping[str, str],
                      open_timeout: float) -> ASGIWebSocket:
        if not self._started:
            await self._lifespan.startup()
            self._started = True
        offered = subprotocols if self._offer_corral else ()
        try:
            ws = await ASGIWebSocket.connect(self.app, subprotocols=offered, headers=dict(headers),
                                             timeout=open_timeout)
        except (InvalidStatus, TimeoutError) as exc:
            raise handshake_error(url, exc) from exc
        self._sockets.append(ws)
        return ws

    async def stop(self, timeout: float) -> None:
        """Disconnect, wait for the connections' handlers (a compat one closes its session), then end the
        lifespan, which closes every session left and waits for them."""
        for ws in self._sockets:
            await ws.close(timeout=timeout)
        await self._lifespan.shutdown(timeout)

    def connect_blocking(self, url: str, subprotocols: Sequence[str], headers: Mapping[str, str],
                         open_timeout: float) -> _ThreadedWebSocket:
        if self._thread is None:
            self._thread = LoopThread()
        ws = self._thread.run(self.connect(url, subprotocols, headers, open_timeout))
        return _ThreadedWebSocket(ws, self._thread, open_timeout)

    def stop_blocking(self, timeout: float) -> None:
        """:meth:`stop`, then stop the loop thread (if the app ever ran)."""
        if self._thread is not None:
            try:
                self._thread.run(self.stop(timeout))
            finally:
                self._thread.close()


class _ThreadedWebSocket:
    """An :class:`ASGIWebSocket` on a :class:`LoopThread`, driven from other threads: a blocking
    :class:`~corral.client.transport.Connection`."""

    def __init__(self, ws: ASGIWebSocket, thread: LoopThread, close_timeout: float) -> None:
        self._ws = ws
        self._thread = thread
        self._close_timeout = close_timeout
        self.subprotocol = ws.subprotocol

    def send(self, message: str | bytes) -> None:
        self._thread.run(self._ws.send(message))

    def recv(self, timeout: float | None = None) -> str | bytes:
        return self._thread.run(self._recv(timeout))

    def close(self) -> None:
        self._thread.run(self._ws.close(timeout=self._close_timeout))

    async def _recv(self, timeout: float | None) -> str | bytes:
        # Not asyncio.wait_for: with a timeout of 0 it gives up before a frame already queued is read.
        task = asyncio.ensure_future(self._ws.recv())
        await asyncio.wait((task,), timeout=timeout)
        if not task.done():
            task.cancel()  # ASGIWebSocket.recv is cancellation-safe: the frame stays queued
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise TimeoutError(f"no frame from the app within {timeout}s")
        return task.result()


class _InProcessClient(ClientBase[ObsT, StateT, TransportT]):
    """What the in-process clients add to the real ones: an app of their own, and a close that waits for it."""

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
        self._server = _InProcessServer(env, config, dialect)
        self.app = self._server.app
        #: True once ``close`` has been called.
        self.closed = False
        super().__init__(
            _URL,
            action_type=action_type,
            observation_type=observation_type or cast("type[ObsT]", self._server.env_cls.observation_type),
            state_type=state_type or cast("type[StateT]", self._server.env_cls.state_type),
            token=token,
            codec=codec,
            timeouts=timeouts,
            resume=False,
            transport=self._reach_app(),
        )

    def _reach_app(self) -> TransportT:
        """The transport, blocking or async, that reaches the app (called by ``__init__``)."""
        raise NotImplementedError

    def _closing_app(self) -> bool:
        """Mark the client closed; False if it was already. The sessions' close frames are dropped, not
        sent: stopping the app closes every session and waits for each, but a session that a close frame
        closes leaves the app's books before its instance is closed, and the stop would not wait for it."""
        if self.closed:
            return False
        self.closed = True
        self._core.shutdown_frames()
        return True


class AsyncInProcessClient(_InProcessClient[ObsT, StateT, AsyncConnect], AsyncEnvClient[ObsT, StateT]):
    """An :class:`~corral.AsyncEnvClient` whose server is an app in this process, on the caller's loop.

    The contract is :class:`InProcessClient`'s.
    """

    def _reach_app(self) -> AsyncConnect:
        return self._server.connect

    async def close(self) -> None:
        """Close the connection and the app, and so every session. Idempotent."""
        if self._closing_app():
            await super().close()
            await self._server.stop(self.timeouts.connect)


class InProcessClient(_InProcessClient[ObsT, StateT, Connect], EnvClient[ObsT, StateT]):
    """An :class:`~corral.EnvClient` whose server is an app in this process.

    The app runs on an event loop in a private thread, started on first use and stopped by
    :meth:`close`, so the client also works from code that already runs inside an event loop.

    Contract:

    - each client owns one app for ``env`` (a class, a built-in name or ``"module:Class"``); the app's
      lifespan starts on ``connect`` and ends in ``close``, which returns only after every environment
      instance the client opened has been closed;
    - ``dialect="corral/1"`` (the default) offers the ``corral.v1`` subprotocol; ``"compat"`` offers none
      and speaks OpenEnv's dialect, one request at a time;
    - results are typed with the environment's own observation and state types unless others are
      given; actions go to the server as given (``action_type`` validates dicts locally first);
    - errors raise the same :mod:`corral.errors` classes as over a socket; there is no link to drop, so
      no resume: if the app itself fails, waiting requests raise :class:`~corral.errors.ConnectionLost`.
    """

    def _reach_app(self) -> Connect:
        return self._server.connect_blocking

    def close(self) -> None:
        """Close the connection, the app (and so every session) and the private loop. Idempotent."""
        if self._closing_app():
            super().close()
            self._server.stop_blocking(self.timeouts.connect)
