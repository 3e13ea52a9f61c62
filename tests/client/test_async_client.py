"""``AsyncEnvClient``: the async client against a real server, and its parity with ``EnvClient``."""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from corral import State
from corral.client import AnyObservation, AsyncEnvClient, AsyncSessionGroup, EnvClient, SessionGroup, Timeouts
from corral.client.transport import AsyncConnection, protocol_connect
from corral.envs.echo import EchoAction, EchoObservation
from corral.envs.guess import GuessObservation, GuessState
from corral.errors import (
    ClientClosed,
    ConnectionLost,
    DeadlineExceeded,
    EnvironmentFailed,
    InvalidAction,
    ResetNeeded,
    SessionError,
    TransportError,
    UsageError,
)

from ..support import (
    BlobEnv,
    BlobObservation,
    CountingEnv,
    CountObservation,
    RunningServer,
    SlowEnv,
    SlowObservation,
    eventually,
)


def public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_same_public_surface_as_the_sync_client() -> None:
    assert public(AsyncEnvClient) == public(EnvClient)
    assert public(AsyncSessionGroup) == public(SessionGroup)
    for name in public(EnvClient):
        sync_attr, async_attr = getattr(EnvClient, name), getattr(AsyncEnvClient, name)
        if inspect.isfunction(sync_attr):
            assert inspect.signature(sync_attr).parameters.keys() == inspect.signature(async_attr).parameters.keys()
            assert inspect.iscoroutinefunction(async_attr), name
    assert inspect.signature(EnvClient.__init__) == inspect.signature(AsyncEnvClient.__init__)


async def test_typed_results(echo_server: RunningServer) -> None:
    async with AsyncEnvClient(echo_server.url, observation_type=EchoObservation) as env:
        assert env.dialect == "corral/1"
        assert env.session_id == env.hello["session"]
        reset = await env.reset(episode_id="typed")
        assert isinstance(reset.observation, EchoObservation)
        result = await env.step(EchoAction(message="four"))
        assert result.observation.message_length == 4
        assert result.reward == pytest.approx(0.4)
        assert (result.terminated, result.truncated, result.done) == (False, False, False)
        assert (await env.step({"message": "dict"})).observation.echoed_message == "dict"
        state = await env.state()
        assert isinstance(state, State)
        assert (state.episode_id, state.step_count) == ("typed", 2)


async def test_first_request_of_a_lazy_client_carries_an_id(start_server: Any) -> None:
    server = start_server(CountingEnv)
    env = AsyncEnvClient(server.url)
    try:
        await env.reset()
        assert len(server.manager.sessions[env.session_id].replay) == 1
    finally:
        await env.close()


async def test_concurrent_first_requests_share_one_connection(start_server: Any) -> None:
    server = start_server(CountingEnv)
    opened: list[str] = []

    async def counting(url: str, subprotocols: Sequence[str], headers: Mapping[str, str],
                       open_timeout: float) -> AsyncConnection:
        opened.append(url)
        return await protocol_connect(url, subprotocols, headers, open_timeout)

    env = AsyncEnvClient(server.url, transport=counting)
    try:
        await asyncio.gather(env.reset(), env.state(), env.list_tools())
        assert len(opened) == 1
        assert len(server.manager.sessions) == 1
    finally:
        await env.close()


async def test_untyped_observation(echo_server: RunningServer) -> None:
    async with AsyncEnvClient(echo_server.url) as env:
        await env.reset()
        observation = (await env.step({"message": "hi"})).observation
    assert isinstance(observation, AnyObservation)
    assert observation.model_dump() == {"metadata": {}, "echoed_message": "hi", "message_length": 2}


async def test_guess_episode(guess_server: RunningServer) -> None:
    async with AsyncEnvClient(guess_server.url, observation_type=GuessObservation, state_type=GuessState) as env:
        observation = (await env.reset(seed=5, high=40)).observation
        result = await env.step({"guess": (observation.low + observation.high) // 2})
        while not result.done:
            observation = result.observation
            result = await env.step({"guess": (observation.low + observation.high) // 2})
        assert result.terminated
        assert result.reward == 1.0
        state = await env.state()
        assert isinstance(state, GuessState)
        assert state.found
        with pytest.raises(ResetNeeded):
            await env.step({"guess": 1})
        assert await env.call_tool("range_size") == 1
        assert [t["name"] for t in await env.list_tools()] == ["range_size"]


async def test_concurrent_requests_on_one_client(start_server: Any) -> None:
    server = start_server(CountingEnv)
    async with AsyncEnvClient(server.url, observation_type=CountObservation) as env:
        await env.reset()
        results = await asyncio.gather(*(env.step({"n": 1}) for _ in range(20)))
        assert sorted(r.observation.total for r in results) == list(range(1, 21))
        assert (await env.state()).step_count == 20


async def test_errors(start_server: Any) -> None:
    server = start_server(SlowEnv)
    async with AsyncEnvClient(server.url, observation_type=SlowObservation) as env:
        with pytest.raises(ResetNeeded):
            await env.step({"delay": 0})
        await env.reset()
        with pytest.raises(EnvironmentFailed, match="on purpose"):
            await env.step({"fail": True})
        with pytest.raises(InvalidAction) as info:
            await env.step({"delay": "slow"})
        assert info.value.errors[0]["loc"] == ["delay"]
        assert (await env.step({"delay": 0})).reward == 1.0


async def test_client_side_validation(echo_server: RunningServer) -> None:
    async with AsyncEnvClient(echo_server.url, action_type=EchoAction) as env:
        await env.reset()
        with pytest.raises(InvalidAction):
            await env.step({"mesage": "typo"})


async def test_deadline(start_server: Any) -> None:
    server = start_server(SlowEnv)
    async with AsyncEnvClient(server.url, observation_type=SlowObservation) as env:
        await env.reset()
        assert (await env.step({"delay": 0.01}, deadline=5)).observation.delay == 0.01
        with pytest.raises(DeadlineExceeded):
            await env.step({"delay": 5}, deadline=0.05)
        with pytest.raises(SessionError):
            await env.step({"delay": 0})
    assert server.manager.active == 0


async def test_request_timeout_never_mismatches_a_late_reply(start_server: Any) -> None:
    server = start_server(SlowEnv)
    # The timeout must also cover the reset before it on a loaded machine; the step outlasts it by far.
    async with AsyncEnvClient(server.url, observation_type=SlowObservation, timeouts=Timeouts(request=0.5)) as env:
        await env.reset()
        with pytest.raises(TransportError, match="no reply within"):
            await env.step({"delay": 1.2})
        session = server.manager.sessions[env.session_id]
        await eventually(lambda: not session.lock.locked())
        await asyncio.sleep(0.05)  # the late reply has arrived and been dropped
        state = await env.state()
        assert isinstance(state, State)
        assert state.step_count == 1


async def test_msgpack_codec_with_bytes(start_server: Any) -> None:
    server = start_server(BlobEnv)
    async with AsyncEnvClient(server.url, codec="msgpack", observation_type=BlobObservation) as env:
        assert env.hello["codec"] == "msgpack"
        await env.reset()
        result = await env.step({"size": 70_000})
        assert result.observation.blob == BlobEnv.blob(70_000)


async def test_close_is_idempotent_and_use_after_close_raises(start_server: Any) -> None:
    CountingEnv.reset_counters()
    server = start_server(CountingEnv)
    env = AsyncEnvClient(server.url)
    await env.reset()
    await env.close()
    await env.close()
    for call in (env.reset(), env.step({"n": 1}), env.state(), env.connect(), env.sessions(1)):
        with pytest.raises(ClientClosed):
            await call
    await eventually(lambda: server.manager.active == 0)
    await eventually(lambda: CountingEnv.closed == 1)  # close() runs just after the slot is freed


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportError, match="is the server running"):
        await AsyncEnvClient(f"http://127.0.0.1:{port}", timeouts=Timeouts(connect=2)).connect()


async def test_bad_arguments() -> None:
    with pytest.raises(UsageError):
        AsyncEnvClient("http://127.0.0.1:1", codec="xml")


async def test_compat_fallback(start_server: Any) -> None:
    server = start_server(CountingEnv, compat_only=True)
    async with AsyncEnvClient(server.url, observation_type=CountObservation) as env:
        assert env.dialect == "compat"
        await env.reset()
        results = await asyncio.gather(*(env.step({"n": 1}) for _ in range(5)))
        assert sorted(r.observation.total for r in results) == [1, 2, 3, 4, 5]
        assert (await env.state()).step_count == 5
        with pytest.raises(UsageError):
            await env.sessions(2)


async def test_compat_timeout_closes_the_client(start_server: Any) -> None:
    server = start_server(SlowEnv, compat_only=True)
    env = AsyncEnvClient(server.url, timeouts=Timeouts(request=0.5))
    await env.reset()
    with pytest.raises(TransportError):
        await env.step({"delay": 1.2})
    with pytest.raises(ClientClosed):
        await env.state()
    await env.close()


async def test_compat_link_loss_is_not_resumed(start_server: Any) -> None:
    server = start_server(CountingEnv, compat_only=True)
    env = AsyncEnvClient(server.url)
    await env.reset()
    assert env._ws is not None
    env._ws.transport.abort()
    with pytest.raises(ConnectionLost):
        await env.step({"n": 1})
    await env.close()


async def test_close_fails_requests_still_waiting(start_server: Any) -> None:
    server = start_server(SlowEnv)
    env = AsyncEnvClient(server.url, observation_type=SlowObservation)
    await env.reset()
    step = asyncio.ensure_future(env.step({"delay": 1.2}))
    await asyncio.sleep(0.05)
    await env.close()
    with pytest.raises(ClientClosed):
        await step
