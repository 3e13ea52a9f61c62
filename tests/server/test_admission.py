"""Admission: a full server refuses before the upgrade (503 + Retry-After) or queues a client that asked to wait."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack
import orjson
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from corral.client import AsyncEnvClient, EnvClient
from corral.errors import CapacityReached
from corral.protocol import HEADER_WAIT, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK

from ..support import CountingEnv, RunningServer, ask, recv, send, wait_until


def refused(server: RunningServer, headers: dict[str, str] | None = None,
            subprotocols: list[str] | None = None) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        server.ws(subprotocols, headers)
    return info.value


@pytest.mark.parametrize("subprotocols", [None, [SUBPROTOCOL_JSON]])
def test_full_server_refuses_before_the_upgrade(start_server: Any, subprotocols: list[str] | None) -> None:
    server = start_server(CountingEnv, capacity=2)
    with server.ws(subprotocols) as first, server.ws(subprotocols) as second:
        error = refused(server, subprotocols=subprotocols)
        response = error.response
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        body = orjson.loads(response.body or b"")
        assert body["code"] == "CAPACITY_REACHED"
        assert body["active_sessions"] == 2
        assert body["max_sessions"] == 2
        assert "capacity" in body["message"]
        assert server.manager.active == 2
        for ws in (first, second):
            send(ws, {"type": "close"})  # corral/1 sessions outlive their link unless closed
    wait_until(lambda: server.manager.active == 0)
    with server.ws(subprotocols):
        pass


def test_clients_raise_capacity_reached(start_server: Any) -> None:
    server = start_server(CountingEnv, capacity=1)
    with EnvClient(server.url), pytest.raises(CapacityReached) as info:
        EnvClient(server.url).connect()
    assert info.value.retry_after == 1.0
    assert info.value.details["max_sessions"] == 1


async def test_async_client_raises_capacity_reached(start_server: Any) -> None:
    server = start_server(CountingEnv, capacity=1)
    async with AsyncEnvClient(server.url):
        with pytest.raises(CapacityReached):
            await AsyncEnvClient(server.url).connect()


def test_waiting_client_gets_the_freed_slot(start_server: Any) -> None:
    server = start_server(CountingEnv, capacity=1)
    holder = server.ws()
    ask(holder, {"type": "reset"})
    release = threading.Timer(0.2, holder.close)
    release.start()
    try:
        with server.ws(headers={HEADER_WAIT: "5"}) as ws:
            assert ask(ws, {"type": "reset"})["type"] == "observation"
            assert server.manager.active == 1
    finally:
        release.join()


def test_waiting_sync_client_gets_the_freed_slot(start_server: Any) -> None:
    server = start_server(CountingEnv, capacity=1)
    first = EnvClient(server.url).connect()
    release = threading.Timer(0.2, first.close)
    release.start()
    try:
        with EnvClient(server.url, admission_wait=5) as second:
            assert second.reset().reward == 0.0
    finally:
        release.join()


def test_wait_runs_out(start_server: Any) -> None:
    server = start_server(CountingEnv, capacity=1)
    with server.ws():
        error = refused(server, {HEADER_WAIT: "0.1"})
    assert error.response.status_code == 503


def test_wait_is_capped_by_the_server(start_server: Any) -> None:
    server = start_server(CountingEnv, capacity=1, max_wait_s=0.1)
    with server.ws():
        error = refused(server, {HEADER_WAIT: "3600"})
    assert error.response.status_code == 503


@pytest.mark.parametrize("wait", ["soon", "nan", "-1", "inf", ""])
def test_bad_wait_header(start_server: Any, wait: str) -> None:
    server = start_server(CountingEnv, capacity=1)
    with server.ws():
        error = refused(server, {HEADER_WAIT: wait})
    assert error.response.status_code == (503 if wait == "" else 400)
    wait_until(lambda: server.manager.active == 0)


@pytest.mark.parametrize("wait", [-1, "soon", float("nan"), float("inf"), True])
def test_bad_wait_in_open_frame(start_server: Any, wait: Any) -> None:
    server = start_server(CountingEnv, capacity=1)
    with server.ws([SUBPROTOCOL_MSGPACK]) as ws:  # msgpack can carry NaN and infinity
        ws.recv(5)
        ws.send(msgpack.packb({"type": "open", "id": 1, "data": {"count": 1, "wait_s": wait}}))
        reply = msgpack.unpackb(ws.recv(5))
        assert reply["id"] == 1
        assert reply["data"]["code"] == "VALIDATION_ERROR"
        ws.send(msgpack.packb({"type": "ping", "id": 2}))
        assert msgpack.unpackb(ws.recv(5)) == {"type": "pong", "id": 2}


def test_capacity_error_never_after_accept(start_server: Any) -> None:
    server = start_server(CountingEnv, capacity=2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(_: int) -> None:
        try:
            ws = server.ws()
        except InvalidStatus as exc:
            outcome = f"refused {exc.response.status_code}"
        else:
            with ws:
                try:
                    reply = ask(ws, {"type": "reset"})
                    ask(ws, {"type": "step", "data": {"n": 1}})
                    outcome = "served" if reply["type"] == "observation" else f"error {reply}"
                except ConnectionClosed as exc:
                    outcome = f"dropped after accept: {exc}"
        with lock:
            outcomes.append(outcome)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(attempt, range(24)))
    assert set(outcomes) <= {"served", "refused 503"}, outcomes
    assert "served" in outcomes
    wait_until(lambda: server.manager.active == 0)


def test_singleton_environment_has_capacity_one(start_server: Any) -> None:
    class Singleton(CountingEnv):
        concurrent_sessions = False

    server = start_server(Singleton, capacity=10)
    assert server.manager.capacity == 1
    with server.ws([SUBPROTOCOL_JSON]) as ws:
        recv(ws)
        assert refused(server).response.status_code == 503
        reply = ask(ws, {"type": "open", "id": 1, "data": {"count": 1}})
        assert reply["type"] == "error"
        assert reply["data"]["code"] == "CAPACITY_REACHED"


def test_http_reset_at_capacity(start_server: Any) -> None:
    server = start_server(CountingEnv, capacity=1)
    with server.http() as http, server.ws():
        response = http.post("/reset", json={})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.json()["code"] == "CAPACITY_REACHED"
