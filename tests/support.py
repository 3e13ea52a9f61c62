"""Shared helpers for the server and client tests: a real uvicorn server in a thread, and small environments."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from typing import Any, ClassVar

import httpx
import orjson
import uvicorn
from websockets.sync.client import ClientConnection, connect

from corral import Action, AsyncEnvironment, EnvInfo, Environment, Observation, ServerConfig, State, StepResult
from corral.environment import EnvClass
from corral.server import CorralApp, create_app, uvicorn_config

_DIRECT_CONNECT: dict[str, Any] = {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}


class RunningServer:
    """A uvicorn server for one environment class on 127.0.0.1, an ephemeral port, in a thread with its own loop."""

    def __init__(self, env_cls: EnvClass, config: ServerConfig, *, compat_only: bool = False,
                 uds: str | None = None) -> None:
        self.config = config
        self.uds = uds
        self.app: CorralApp = create_app(env_cls, config)
        asgi: Any = _CompatOnly(self.app) if compat_only else self.app
        self.server = _QuickServer(uvicorn_config(asgi, port=0, uds=uds, config=config))
        self.thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)
        self.port = 0

    def start(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)
        if self.uds is None:
            self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Shut the server down (closing every session) and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(15)
        if self.thread.is_alive():
            raise RuntimeError("the test server did not stop within 15 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def manager(self) -> Any:
        return self.app.manager

    def http(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)

    def call(self, coro: Any, timeout: float = 10) -> Any:
        """Run a coroutine on the server's own event loop (to act on its sessions from a test)."""
        loop = self.server.servers[0].get_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def ws(self, subprotocols: list[str] | None = None, headers: dict[str, str] | None = None) -> ClientConnection:
        """A raw ``websockets`` connection to ``/ws``."""
        return connect(
            self.ws_url,
            subprotocols=subprotocols,  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=5,
            max_size=None,
            max_queue=None,
            compression=None,
            **_DIRECT_CONNECT,
        )


class _QuickServer(uvicorn.Server):
    """uvicorn checks ``should_exit`` every 100 ms; tests stop hundreds of servers, so check every 10 ms."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter += 1
            await asyncio.sleep(0.01)


class _CompatOnly:
    """Hides the offered subprotocols from the app, so it answers like an OpenEnv server (compat only)."""

    def __init__(self, app: CorralApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope = {**scope, "subprotocols": []}
        await self.app(scope, receive, send)


def wait_until(predicate: Any, timeout: float = 5.0, interval: float = 0.01) -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


async def eventually(predicate: Any, timeout: float = 5.0, interval: float = 0.005) -> None:
    """Like :func:`wait_until`, for async tests: poll without blocking the test's event loop."""
    for _ in range(int(timeout / interval) + 1):
        if predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def send(ws: ClientConnection, frame: Any) -> None:
    ws.send(orjson.dumps(frame).decode())


def recv(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    raw = ws.recv(timeout)
    frame = orjson.loads(raw)
    assert isinstance(frame, dict)
    return frame


def ask(ws: ClientConnection, frame: Any, timeout: float = 5) -> dict[str, Any]:
    send(ws, frame)
    return recv(ws, timeout)


# -- environments for tests ----------------------------------------------------------------------


class CountAction(Action):
    n: int = 1


class CountObservation(Observation):
    total: int


class CountingEnv(Environment[CountAction, CountObservation, State]):
    """Adds ``n`` to a running total. Counts instances and ``close`` calls (of subclasses too) and records
    the threads it ran on."""

    action_type = CountAction
    observation_type = CountObservation
    info = EnvInfo(name="counting", version="0.0.1")

    created: ClassVar[int] = 0
    closed: ClassVar[int] = 0
    threads: ClassVar[list[str]] = []
    lock = threading.Lock()

    def __init__(self) -> None:
        with CountingEnv.lock:
            CountingEnv.created += 1
        self._state = State()
        self._total = 0
        self._closed = False
        self._seen()

    def _seen(self) -> None:
        CountingEnv.threads.append(threading.current_thread().name)

    @classmethod
    def reset_counters(cls) -> None:
        cls.created = 0
        cls.closed = 0
        cls.threads = []

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        self._seen()
        self._state = State(episode_id=episode_id or "episode", step_count=0)
        self._total = 0
        return StepResult(observation=CountObservation(total=0), reward=0.0)

    def step(self, action: CountAction) -> StepResult[Any]:
        self._seen()
        self._state.step_count += 1
        self._total += action.n
        observation = CountObservation(total=self._total, metadata={"step": self._state.step_count})
        return StepResult(observation=observation, reward=float(action.n), info={"n": action.n})

    @property
    def state(self) -> State:
        return self._state

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with CountingEnv.lock:
                CountingEnv.closed += 1


class InlineCountingEnv(CountingEnv):
    """:class:`CountingEnv` called on the event loop: the server's hot path, without a thread."""

    inline = True


class SlowAction(Action):
    delay: float = 0.0
    fail: bool = False


class SlowObservation(Observation):
    delay: float


class SlowEnv(AsyncEnvironment[SlowAction, SlowObservation, State]):
    """Sleeps ``delay`` seconds on the loop in ``step``; raises when asked to."""

    action_type = SlowAction
    observation_type = SlowObservation
    info = EnvInfo(name="slow")

    def __init__(self) -> None:
        self._state = State()

    async def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        self._state = State(episode_id=episode_id or "slow", step_count=0)
        return StepResult(observation=SlowObservation(delay=0.0))

    async def step(self, action: SlowAction) -> StepResult[Any]:
        if action.fail:
            raise RuntimeError("the environment broke on purpose")
        await asyncio.sleep(action.delay)
        self._state.step_count += 1
        return StepResult(observation=SlowObservation(delay=action.delay), reward=1.0)

    @property
    def state(self) -> State:
        return self._state


class HangAction(Action):
    hang: bool = False


class HangObservation(Observation):
    ok: bool = True


class HangingEnv(Environment[HangAction, HangObservation, State]):
    """A blocking environment whose step can block its thread until :attr:`release` is set."""

    action_type = HangAction
    observation_type = HangObservation
    info = EnvInfo(name="hanging")
    release: ClassVar[threading.Event] = threading.Event()
    closed: ClassVar[int] = 0

    def __init__(self) -> None:
        self._state = State()

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        self._state = State(episode_id="hang", step_count=0)
        return StepResult(observation=HangObservation())

    def step(self, action: HangAction) -> StepResult[Any]:
        if action.hang:
            HangingEnv.release.wait(10)
        self._state.step_count += 1
        return StepResult(observation=HangObservation())

    @property
    def state(self) -> State:
        return self._state

    def close(self) -> None:
        HangingEnv.closed += 1


class BlobAction(Action):
    size: int = 16


class BlobObservation(Observation):
    blob: bytes
    size: int


class BlobEnv(Environment[BlobAction, BlobObservation, State]):
    """Returns ``size`` bytes of every value 0-255 in a ``bytes`` observation field (not valid UTF-8)."""

    action_type = BlobAction
    observation_type = BlobObservation
    info = EnvInfo(name="blob")
    inline = True

    def __init__(self) -> None:
        self._state = State()

    @staticmethod
    def blob(size: int) -> bytes:
        return bytes(i % 256 for i in range(255, 255 + size))

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        self._state = State(episode_id="blob", step_count=0)
        return StepResult(observation=BlobObservation(blob=self.blob(4), size=4))

    def step(self, action: BlobAction) -> StepResult[Any]:
        self._state.step_count += 1
        return StepResult(observation=BlobObservation(blob=self.blob(action.size), size=action.size))

    @property
    def state(self) -> State:
        return self._state
