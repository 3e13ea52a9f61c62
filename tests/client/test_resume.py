"""Resume: a dropped link does not lose the episode, and a retried request is never applied twice."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection

from corral.client import AsyncEnvClient, EnvClient
from corral.errors import ConnectionLost
from corral.protocol import HEADER_RESUME_SESSION, HEADER_RESUME_TOKEN, SUBPROTOCOL_JSON

from ..support import (
    CountingEnv,
    CountObservation,
    InlineCountingEnv,
    RunningServer,
    SlowEnv,
    SlowObservation,
    ask,
    eventually,
    recv,
    send,
    wait_until,
)


def drop(ws: ClientConnection) -> None:
    """Kill the link abruptly: no close frame, just the TCP connection going away."""
    ws.socket.shutdown(socket.SHUT_RDWR)
    ws.close()


def open_corral(
    server: RunningServer, headers: dict[str, str] | None = None
) -> tuple[ClientConnection, dict[str, Any]]:
    ws = server.ws([SUBPROTOCOL_JSON], headers)
    hello = recv(ws)
    assert hello["type"] == "hello"
    return ws, hello["data"]


def resume_headers(hello: dict[str, Any]) -> dict[str, str]:
    return {HEADER_RESUME_SESSION: hello["session"], HEADER_RESUME_TOKEN: hello["resume_token"]}


def detached(server: RunningServer, session_id: str) -> bool:
    session = server.manager.sessions.get(session_id)
    return session is not None and session.connection is None


# -- the protocol, with a raw socket ---------------------------------------------------------------


def test_resume_continues_the_episode(start_server: Any) -> None:
    server = start_server(CountingEnv, lease_s=30)
    ws, hello = open_corral(server)
    ask(ws, {"type": "reset", "id": 1, "data": {"episode_id": "long"}})
    ask(ws, {"type": "step", "id": 2, "data": {"n": 5}})
    drop(ws)
    wait_until(lambda: detached(server, hello["session"]))

    with server.ws([SUBPROTOCOL_JSON], resume_headers(hello)) as again:
        data = recv(again)["data"]
        assert data["resumed"] is True
        assert data["session"] == hello["session"]
        assert data["resume_token"] == hello["resume_token"]
        reply = ask(again, {"type": "step", "id": 3, "data": {"n": 1}})
        assert reply["data"]["observation"]["total"] == 6
        assert ask(again, {"type": "state", "id": 4})["data"] == {"episode_id": "long", "step_count": 2}
    assert len(server.manager.sessions) == 1


def test_resume_before_the_server_noticed_the_drop(start_server: Any) -> None:
    server = start_server(CountingEnv, lease_s=30)
    ws, hello = open_corral(server)
    ask(ws, {"type": "reset", "id": 1})
    with server.ws([SUBPROTOCOL_JSON], resume_headers(hello)) as again:
        assert recv(again)["data"]["resumed"] is True
        assert ask(again, {"type": "step", "id": 2, "data": {"n": 2}})["data"]["observation"]["total"] == 2
        drop(ws)  # the old link going away later must not detach the session from the new one
        time.sleep(0.05)
        session = server.manager.sessions[hello["session"]]
        assert session.connection is not None
        assert ask(again, {"type": "state", "id": 3})["data"]["step_count"] == 1


@pytest.mark.parametrize("env_cls", [CountingEnv, InlineCountingEnv], ids=["pool", "inline"])
def test_retried_step_is_answered_from_the_record(start_server: Any, env_cls: type[CountingEnv]) -> None:
    server = start_server(env_cls, lease_s=30)
    ws, hello = open_corral(server)
    ask(ws, {"type": "reset", "id": "r"})
    first = ask(ws, {"type": "step", "id": "s1", "data": {"n": 3}})
    # the same id again on the same link: the record, not a second step
    assert ask(ws, {"type": "step", "id": "s1", "data": {"n": 3}}) == first
    drop(ws)

    with server.ws([SUBPROTOCOL_JSON], resume_headers(hello)) as again:
        recv(again)
        retried = ask(again, {"type": "step", "id": "s1", "data": {"n": 3}})
        assert retried == first
        assert retried["data"]["observation"]["total"] == 3
        assert ask(again, {"type": "state", "id": "st"})["data"]["step_count"] == 1
        assert ask(again, {"type": "step", "id": "s2", "data": {"n": 1}})["data"]["observation"]["total"] == 4


def test_step_in_flight_when_the_link_drops_is_answered_once(start_server: Any) -> None:
    server = start_server(SlowEnv, lease_s=30)
    ws, hello = open_corral(server)
    ask(ws, {"type": "reset", "id": 0})
    send(ws, {"type": "step", "id": 7, "data": {"delay": 0.3}})
    session = server.manager.sessions[hello["session"]]
    wait_until(session.lock.locked)
    drop(ws)

    with server.ws([SUBPROTOCOL_JSON], resume_headers(hello)) as again:
        recv(again)
        send(again, {"type": "step", "id": 7, "data": {"delay": 0.3}})
        reply = recv(again)
        assert reply["type"] == "observation"
        assert reply["id"] == 7
        with pytest.raises(TimeoutError):
            again.recv(0.4)  # answered once
        assert ask(again, {"type": "state", "id": 8})["data"]["step_count"] == 1


def test_resume_after_the_lease_is_rejected_and_the_slot_freed(start_server: Any) -> None:
    CountingEnv.reset_counters()
    server = start_server(CountingEnv, lease_s=0.3, reap_interval_s=0.05, capacity=1)
    ws, hello = open_corral(server)
    ask(ws, {"type": "reset", "id": 1})
    drop(ws)
    wait_until(lambda: not server.manager.sessions)
    assert server.manager.active == 0
    wait_until(lambda: CountingEnv.closed == 1)  # close() runs just after the slot is freed
    with pytest.raises(InvalidStatus) as info:
        server.ws([SUBPROTOCOL_JSON], resume_headers(hello))
    assert info.value.response.status_code == 410
    assert b"RESUME_REJECTED" in info.value.response.body
    ws2, _ = open_corral(server)  # the one slot is free again
    ws2.close()


def test_resume_with_a_wrong_token_is_rejected(echo_server: RunningServer) -> None:
    ws, hello = open_corral(echo_server)
    with ws, pytest.raises(InvalidStatus) as info:
        echo_server.ws([SUBPROTOCOL_JSON], {**resume_headers(hello), HEADER_RESUME_TOKEN: "forged"})
    assert info.value.response.status_code == 410


def test_resume_extra_sessions_with_a_resume_frame(start_server: Any) -> None:
    server = start_server(CountingEnv, lease_s=30)
    ws, _ = open_corral(server, {"X-Corral-Open": "0"})
    entries = ask(ws, {"type": "open", "id": 1, "data": {"count": 2}})["data"]["sessions"]
    ids = [e["session"] for e in entries]
    ask(ws, {"type": "reset_many", "id": 2, "data": {"items": [{"session": s} for s in ids]}})
    ask(ws, {"type": "step_many", "id": 3, "data": {"items": [{"session": s, "data": {"n": 2}} for s in ids]}})
    drop(ws)
    wait_until(lambda: all(detached(server, s) for s in ids))

    with server.ws([SUBPROTOCOL_JSON], {"X-Corral-Open": "0"}) as again:
        recv(again)
        forged = ask(again, {"type": "resume", "id": 4,
                             "data": {"sessions": [{"session": ids[0], "resume_token": "nope"}]}})
        assert forged["type"] == "error"
        assert forged["data"]["code"] == "RESUME_REJECTED"
        resumed = ask(again, {"type": "resume", "id": 5, "data": {"sessions": entries}})
        assert resumed == {"type": "resumed", "id": 5, "data": {"sessions": ids}}
        reply = ask(again, {"type": "step_many", "id": 6,
                            "data": {"items": [{"session": s, "data": {"n": 1}} for s in ids]}})
        assert [r["data"]["observation"]["total"] for r in reply["data"]["results"]] == [3, 3]


# -- the clients resume by themselves --------------------------------------------------------------


def kill_sync(client: EnvClient[Any, Any]) -> None:
    ws = client._ws
    assert ws is not None
    ws.socket.shutdown(socket.SHUT_RDWR)


def kill_async(client: AsyncEnvClient[Any, Any]) -> None:
    ws = client._ws
    assert ws is not None
    ws.transport.abort()


def test_sync_client_resumes(start_server: Any) -> None:
    server = start_server(CountingEnv, lease_s=30)
    with EnvClient(server.url, observation_type=CountObservation) as client:
        client.reset()
        client.step({"n": 2})
        session = client.session_id
        kill_sync(client)
        result = client.step({"n": 3})
        assert result.observation.total == 5
        assert client.session_id == session
        assert client.hello["resumed"] is True
        kill_sync(client)
        assert client.state().step_count == 2
        assert len(server.manager.sessions) == 1


def test_sync_client_step_in_flight_is_applied_once(start_server: Any) -> None:
    server = start_server(SlowEnv, lease_s=30)
    with EnvClient(server.url, observation_type=SlowObservation) as client:
        client.reset()
        session = server.manager.sessions[client.session_id]

        def kill_when_running() -> None:
            wait_until(session.lock.locked)
            kill_sync(client)

        killer = threading.Thread(target=kill_when_running)
        killer.start()
        result = client.step({"delay": 0.3})
        killer.join()
        assert result.observation.delay == 0.3
        assert client.hello["resumed"] is True
        assert client.state().step_count == 1


def test_sync_client_gives_up_after_the_lease(start_server: Any) -> None:
    server = start_server(CountingEnv, lease_s=0.2, reap_interval_s=0.05)
    client = EnvClient(server.url)
    with client:
        client.reset()
        session_id = client.session_id
        server.stop()  # the server goes away for good
        with pytest.raises(ConnectionLost) as info:
            client.step({"n": 1})
        assert "could not be resumed" in str(info.value)
    assert session_id is not None


async def test_async_client_resumes(start_server: Any) -> None:
    server = start_server(CountingEnv, lease_s=30)
    async with AsyncEnvClient(server.url, observation_type=CountObservation) as client:
        await client.reset()
        await client.step({"n": 2})
        kill_async(client)
        result = await client.step({"n": 3})
        assert result.observation.total == 5
        assert client.hello["resumed"] is True
        assert (await client.state()).step_count == 2
        assert len(server.manager.sessions) == 1


async def test_async_client_step_in_flight_is_applied_once(start_server: Any) -> None:
    server = start_server(SlowEnv, lease_s=30)
    async with AsyncEnvClient(server.url, observation_type=SlowObservation) as client:
        await client.reset()
        session = server.manager.sessions[client.session_id]
        step = asyncio.ensure_future(client.step({"delay": 0.3}))
        await eventually(session.lock.locked)
        kill_async(client)
        result = await step
        assert result.observation.delay == 0.3
        assert (await client.state()).step_count == 1


async def test_async_client_concurrent_steps_survive_a_drop(start_server: Any) -> None:
    server = start_server(SlowEnv, lease_s=30)
    async with AsyncEnvClient(server.url, observation_type=SlowObservation) as client:
        group = await client.sessions(3)
        await group.reset()
        first = asyncio.ensure_future(group.step([{"delay": 0.2}] * 3))
        own = asyncio.ensure_future(client.reset())
        await asyncio.sleep(0.05)
        kill_async(client)
        results = await first
        assert [r.observation.delay for r in results] == [0.2, 0.2, 0.2]
        await own
        states = [server.manager.sessions[s].runner.env.state.step_count for s in group.ids]
        assert states == [1, 1, 1]
