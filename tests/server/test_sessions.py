"""Session lifecycle: the reaper, freeing slots, shutdown, and where environment code runs."""

from __future__ import annotations

import socket
import threading
from typing import Any, ClassVar

import pytest
from websockets.exceptions import ConnectionClosed

from corral import AsyncEnvironment, EnvInfo, Environment, ServerConfig, State, StepResult
from corral.errors import CapacityReached, FactoryError
from corral.protocol import SUBPROTOCOL_JSON
from corral.server.metrics import Metrics
from corral.server.sessions import SessionManager

from ..support import (
    CountAction,
    CountingEnv,
    CountObservation,
    HangingEnv,
    RunningServer,
    SlowEnv,
    ask,
    recv,
    wait_until,
)


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    CountingEnv.reset_counters()


def test_idle_reaper_closes_idle_sessions(start_server: Any) -> None:
    server = start_server(CountingEnv, idle_timeout_s=0.2, reap_interval_s=0.05)
    with server.ws() as ws:
        ask(ws, {"type": "reset"})
        wait_until(lambda: CountingEnv.closed == 1)
        assert server.manager.active == 0
        reply = ask(ws, {"type": "step", "data": {"n": 1}})
        assert reply["type"] == "error"
        assert reply["data"]["code"] == "SESSION_ERROR"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1000


def test_activity_keeps_a_session_alive(start_server: Any) -> None:
    server = start_server(CountingEnv, idle_timeout_s=0.3, reap_interval_s=0.05)
    with server.ws() as ws:
        ask(ws, {"type": "reset"})
        for _ in range(8):
            threading.Event().wait(0.06)
            assert ask(ws, {"type": "step", "data": {"n": 1}})["type"] == "observation"
        assert CountingEnv.closed == 0


def test_compat_disconnect_frees_the_slot_at_once(start_server: Any) -> None:
    server = start_server(CountingEnv, capacity=1, lease_s=60)
    ws = server.ws()
    ask(ws, {"type": "reset"})
    ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame
    ws.close()
    wait_until(lambda: server.manager.active == 0, timeout=2)
    wait_until(lambda: CountingEnv.closed == 1)  # close() runs just after the slot is freed
    with server.ws() as again:
        assert ask(again, {"type": "reset"})["type"] == "observation"


def test_dropped_corral_session_is_freed_after_its_lease(start_server: Any) -> None:
    server = start_server(CountingEnv, capacity=1, lease_s=0.4, reap_interval_s=0.05)
    ws = server.ws([SUBPROTOCOL_JSON])
    sid = recv(ws)["data"]["session"]
    ask(ws, {"type": "reset", "id": 1})
    ws.socket.shutdown(socket.SHUT_RDWR)
    ws.close()
    wait_until(lambda: server.manager.sessions[sid].connection is None)
    assert server.manager.active == 1  # held for a resume...
    assert CountingEnv.closed == 0
    wait_until(lambda: server.manager.active == 0)  # ...until the lease runs out
    wait_until(lambda: CountingEnv.closed == 1)  # close() runs just after the slot is freed
    with server.ws([SUBPROTOCOL_JSON]) as again:
        assert recv(again)["type"] == "hello"


def test_shutdown_closes_every_environment(start_server: Any) -> None:
    server: RunningServer = start_server(CountingEnv)
    compat = [server.ws() for _ in range(2)]
    for ws in compat:
        ask(ws, {"type": "reset"})
    corral = server.ws([SUBPROTOCOL_JSON])
    recv(corral)
    ask(corral, {"type": "open", "id": 1, "data": {"count": 3}})
    with server.http() as http:
        assert http.post("/reset", json={}).status_code == 200
    dropped = server.ws([SUBPROTOCOL_JSON])
    recv(dropped)
    dropped.socket.shutdown(socket.SHUT_RDWR)
    dropped.close()
    assert CountingEnv.created == 8
    server.stop()
    assert CountingEnv.closed == CountingEnv.created == 8
    for ws in [*compat, corral]:
        ws.close()


def test_shutdown_closes_an_environment_whose_step_is_running(start_server: Any) -> None:
    class Blocking(CountingEnv):
        entered: ClassVar[threading.Event] = threading.Event()
        release: ClassVar[threading.Event] = threading.Event()

        def step(self, action: CountAction) -> StepResult[Any]:
            Blocking.entered.set()
            Blocking.release.wait(5)
            return super().step(action)

    server: RunningServer = start_server(Blocking)
    ws = server.ws()
    ask(ws, {"type": "reset"})
    ws.send('{"type": "step", "data": {"n": 1}}')
    Blocking.entered.wait(5)
    threading.Timer(0.2, Blocking.release.set).start()
    server.stop()
    ws.close()
    assert CountingEnv.closed == CountingEnv.created == 1


class AffineEnv(Environment[CountAction, CountObservation, State]):
    action_type = CountAction
    observation_type = CountObservation
    info = EnvInfo(name="affine")
    thread_affinity = True
    calls: ClassVar[list[tuple[int, str, int]]] = []

    def __init__(self) -> None:
        self._state = State()
        self._record("init")

    def _record(self, what: str) -> None:
        AffineEnv.calls.append((id(self), what, threading.get_ident()))

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        self._record("reset")
        return StepResult(observation=CountObservation(total=0))

    def step(self, action: CountAction) -> StepResult[Any]:
        self._record("step")
        self._state.step_count += 1
        return StepResult(observation=CountObservation(total=action.n))

    @property
    def state(self) -> State:
        self._record("state")
        return self._state

    def close(self) -> None:
        self._record("close")


def test_thread_affinity_runs_every_call_on_one_thread(start_server: Any) -> None:
    AffineEnv.calls = []
    server = start_server(AffineEnv, thread_pool_size=4)
    with server.ws() as a, server.ws() as b:
        for ws in (a, b):
            ask(ws, {"type": "reset"})
            for n in range(5):
                ask(ws, {"type": "step", "data": {"n": n}})
            ask(ws, {"type": "state"})
            ws.send('{"type": "close"}')
    wait_until(lambda: sum(what == "close" for _, what, _ in AffineEnv.calls) == 2)
    by_instance: dict[int, set[int]] = {}
    for instance, _, thread in AffineEnv.calls:
        by_instance.setdefault(instance, set()).add(thread)
    assert len(by_instance) == 2
    threads = [next(iter(t)) for t in by_instance.values()]
    assert all(len(t) == 1 for t in by_instance.values())
    assert threads[0] != threads[1]
    assert server.thread.ident not in threads  # never the event loop's thread


def test_sync_environment_runs_off_the_loop(start_server: Any) -> None:
    server = start_server(CountingEnv)
    with server.ws() as ws:
        ask(ws, {"type": "reset"})
        ask(ws, {"type": "step", "data": {"n": 1}})
    assert CountingEnv.threads
    assert "test-uvicorn" not in CountingEnv.threads  # the server's loop thread
    assert all(name.startswith("corral-env") for name in CountingEnv.threads)


def test_inline_and_async_environments_run_on_the_loop(start_server: Any) -> None:
    seen: list[str] = []

    class Inline(CountingEnv):
        inline = True

        def step(self, action: CountAction) -> StepResult[Any]:
            seen.append(threading.current_thread().name)
            return super().step(action)

    class Async(AsyncEnvironment[CountAction, CountObservation, State]):
        action_type = CountAction
        observation_type = CountObservation
        info = EnvInfo(name="async")

        async def reset(self, seed: int | None = None, episode_id: str | None = None,
                        **options: Any) -> StepResult[Any]:
            return StepResult(observation=CountObservation(total=0))

        async def step(self, action: CountAction) -> StepResult[Any]:
            seen.append(threading.current_thread().name)
            return StepResult(observation=CountObservation(total=0))

        @property
        def state(self) -> State:
            return State()

    for env in (Inline, Async):
        server = start_server(env)
        with server.ws() as ws:
            ask(ws, {"type": "reset"})
            ask(ws, {"type": "step", "data": {"n": 1}})
    assert seen == ["test-uvicorn", "test-uvicorn"]


def test_requests_of_one_session_run_in_order_off_the_loop(start_server: Any) -> None:
    server = start_server(CountingEnv, thread_pool_size=8)
    with server.ws() as ws:
        ask(ws, {"type": "reset"})
        for n in range(1, 21):
            ws.send(f'{{"type": "step", "data": {{"n": {n}}}}}')
        totals = [recv(ws)["data"]["observation"]["total"] for _ in range(20)]
    assert totals == [n * (n + 1) // 2 for n in range(1, 21)]


def test_factory_error_is_refused_before_the_upgrade(start_server: Any) -> None:
    from websockets.exceptions import InvalidStatus

    class Broken(CountingEnv):
        def __init__(self) -> None:
            raise OSError("no GPU here")

    server = start_server(Broken)
    with pytest.raises(InvalidStatus) as info:
        server.ws()
    assert info.value.response.status_code == 500
    assert b"FACTORY_ERROR" in (info.value.response.body or b"")
    assert b"no GPU here" in (info.value.response.body or b"")
    assert server.manager.active == 0
    with server.http() as http:
        response = http.post("/reset", json={})
        assert response.status_code == 500
        assert response.json()["code"] == "FACTORY_ERROR"
    assert server.manager.active == 0


# -- the manager on its own (no sockets) ----------------------------------------------------------


async def test_admit_and_release_account_for_slots() -> None:
    manager = SessionManager(CountingEnv, ServerConfig(capacity=2, max_wait_s=0.05), Metrics())
    await manager.admit(2)
    assert manager.free_slots() == 0
    with pytest.raises(CapacityReached):
        await manager.admit(1, wait_s=1.0)  # capped by max_wait_s
    session = await manager.open(admitted=True)
    assert manager.active == 2
    assert len(manager.sessions) == 1
    manager.release(1)
    assert manager.active == 1
    await manager.close(session)
    await manager.close(session)  # idempotent
    assert manager.active == 0
    assert manager.free_slots() == 2
    assert CountingEnv.closed == 1
    await manager.shutdown()


async def test_failed_factory_releases_its_slot() -> None:
    class Broken(CountingEnv):
        def __init__(self) -> None:
            raise RuntimeError("nope")

    manager = SessionManager(Broken, ServerConfig(capacity=1), Metrics())
    for _ in range(3):
        with pytest.raises(FactoryError) as info:
            await manager.open()
        assert info.value.details == {"factory_name": "Broken"}
    assert manager.active == 0
    await manager.shutdown()


def test_deadline_closes_a_blocking_environment_only_after_its_call_returns(start_server: Any) -> None:
    HangingEnv.release.clear()
    HangingEnv.closed = 0
    server = start_server(HangingEnv, step_timeout_s=0.1)
    try:
        with server.ws() as ws:
            ask(ws, {"type": "reset"})
            assert ask(ws, {"type": "step", "data": {"hang": True}})["data"]["code"] == "DEADLINE_EXCEEDED"
            assert server.manager.active == 0  # the slot is free at once...
            threading.Event().wait(0.2)
            assert HangingEnv.closed == 0  # ...but close() waits for the blocked step to return
    finally:
        HangingEnv.release.set()
    wait_until(lambda: HangingEnv.closed == 1)


def test_ping_renews_the_idle_timer(start_server: Any) -> None:
    server = start_server(CountingEnv, idle_timeout_s=0.3, reap_interval_s=0.05)
    with server.ws([SUBPROTOCOL_JSON]) as ws:
        recv(ws)
        ask(ws, {"type": "open", "id": "o", "data": {"count": 1}})
        for i in range(8):
            threading.Event().wait(0.1)
            assert ask(ws, {"type": "ping", "id": i})["type"] == "pong"
        assert CountingEnv.closed == 0
        assert len(server.manager.sessions) == 2
        wait_until(lambda: CountingEnv.closed == 2)  # no more frames: both expire


def test_a_running_request_is_not_idle(start_server: Any) -> None:
    server = start_server(SlowEnv, idle_timeout_s=0.1, reap_interval_s=0.02)
    with server.ws() as ws:
        ask(ws, {"type": "reset"})
        reply = ask(ws, {"type": "step", "data": {"delay": 0.4}})
        assert reply["type"] == "observation"
        assert ask(ws, {"type": "state"})["data"]["step_count"] == 1
