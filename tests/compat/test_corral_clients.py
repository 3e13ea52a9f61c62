"""Corral's clients against openenv-core 0.3.0's own server (``peer/echo_server.py``).

The peer refuses frames with keys it does not know (``{"type": "state", "id": 1}`` is a
VALIDATION_ERROR there), so every successful call here also proves the client sends pure compat frames.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import corral
from corral.envs.echo import EchoAction, EchoObservation

from .conftest import PEER_CAPACITY, RAISE_ON, PeerServers

pytestmark = pytest.mark.peer


def assert_reset(result: corral.StepResult[Any]) -> None:
    assert isinstance(result.observation, EchoObservation)
    assert result.observation.echoed_message == "Echo environment ready!"
    assert result.observation.message_length == 0
    assert result.reward == 0.0
    assert (result.terminated, result.truncated, result.info) == (False, False, {})


def assert_echo(result: corral.StepResult[Any], message: str) -> None:
    assert isinstance(result.observation, EchoObservation)
    assert (result.observation.echoed_message, result.observation.message_length) == (message, len(message))
    assert result.reward == pytest.approx(len(message) * 0.1)
    assert not result.terminated
    assert not result.truncated


def assert_validation_error(info: pytest.ExceptionInfo[corral.InvalidAction]) -> None:
    assert info.value.code == "VALIDATION_ERROR"
    assert [tuple(e["loc"]) for e in info.value.errors] == [("message",)]


def test_sync_client(peer_servers: PeerServers) -> None:
    client = corral.EnvClient(peer_servers.echo.url, observation_type=EchoObservation)
    with client as env:
        assert env.dialect == "compat"
        assert env.session_id is None
        assert env.hello == {}
        assert_reset(env.reset(seed=42, episode_id="ep-sync"))
        assert_echo(env.step({"message": "hi"}), "hi")
        assert_echo(env.step(EchoAction(message="corral")), "corral")
        state = env.state()
        assert isinstance(state, corral.State)
        assert (state.episode_id, state.step_count) == ("ep-sync", 2)

        with pytest.raises(corral.InvalidAction) as invalid:
            env.step({"message": 123})
        assert_validation_error(invalid)
        with pytest.raises(corral.EnvironmentFailed, match=f"echo refused message '{RAISE_ON}'") as failed:
            env.step({"message": RAISE_ON})
        assert failed.value.code == "EXECUTION_ERROR"
        assert_echo(env.step({"message": "still here"}), "still here")
        assert env.state().step_count == 3

        with pytest.raises(corral.UsageError, match="speaks only the OpenEnv dialect"):
            env.sessions(2)
    client.close()  # idempotent
    with pytest.raises(corral.ClientClosed):
        client.reset()


async def test_async_client(peer_servers: PeerServers) -> None:
    client = corral.AsyncEnvClient(peer_servers.echo.url, observation_type=EchoObservation)
    async with client as env:
        assert env.dialect == "compat"
        assert env.session_id is None
        assert env.hello == {}
        assert_reset(await env.reset(seed=42, episode_id="ep-async"))
        assert_echo(await env.step({"message": "hi"}), "hi")
        assert_echo(await env.step(EchoAction(message="corral")), "corral")
        state = await env.state()
        assert isinstance(state, corral.State)
        assert (state.episode_id, state.step_count) == ("ep-async", 2)

        with pytest.raises(corral.InvalidAction) as invalid:
            await env.step({"message": 123})
        assert_validation_error(invalid)
        with pytest.raises(corral.EnvironmentFailed, match=f"echo refused message '{RAISE_ON}'") as failed:
            await env.step({"message": RAISE_ON})
        assert failed.value.code == "EXECUTION_ERROR"
        assert_echo(await env.step({"message": "still here"}), "still here")
        assert (await env.state()).step_count == 3

        with pytest.raises(corral.UsageError, match="speaks only the OpenEnv dialect"):
            await env.sessions(2)
    await client.close()  # idempotent
    with pytest.raises(corral.ClientClosed):
        await client.reset()


async def test_async_client_pipelines_compat_requests_in_order(peer_servers: PeerServers) -> None:
    async with corral.AsyncEnvClient(peer_servers.echo.url, observation_type=EchoObservation) as env:
        await env.reset()
        messages = [f"m{i}" for i in range(8)]
        results = await asyncio.gather(*(env.step({"message": m}) for m in messages))
        assert [r.observation.echoed_message for r in results] == messages
        assert (await env.state()).step_count == len(messages)


def test_typed_client_validates_before_sending(peer_servers: PeerServers) -> None:
    with corral.EnvClient(peer_servers.echo.url, action_type=EchoAction, observation_type=EchoObservation) as env:
        env.reset()
        with pytest.raises(corral.InvalidAction) as invalid:
            env.step({"message": 123})
        assert_validation_error(invalid)
        assert_echo(env.step({"message": "ok"}), "ok")


def test_untyped_client_keeps_every_field(peer_servers: PeerServers) -> None:
    with corral.EnvClient(peer_servers.echo.url) as env:
        result = env.reset()
        assert result.observation.model_dump() == {
            "metadata": {}, "echoed_message": "Echo environment ready!", "message_length": 0,
        }


def wait_for_free_slot(url: str, timeout: float = 10) -> None:
    """Leave the capacity server as found: poll until a new session opens (the peer frees slots asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with corral.EnvClient(url) as env:
                env.reset()
                return
        except corral.CapacityReached:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_sync_client_at_capacity(peer_servers: PeerServers) -> None:
    url = peer_servers.small.url
    wait_for_free_slot(url)
    with corral.EnvClient(url, observation_type=EchoObservation) as holder:
        assert_reset(holder.reset())
        extra = corral.EnvClient(url, observation_type=EchoObservation).connect()
        # openenv accepts the upgrade, then sends CAPACITY_REACHED and closes: the client reports that.
        with pytest.raises(corral.CapacityReached, match="capacity") as refused:
            extra.reset()
        assert refused.value.details["max_sessions"] == PEER_CAPACITY
        with pytest.raises(corral.CapacityReached):
            extra.step({"message": "hi"})  # the reason sticks until the client is closed
        extra.close()
        extra.close()
        with pytest.raises(corral.ClientClosed):
            extra.state()
        assert_echo(holder.step({"message": "hi"}), "hi")
    wait_for_free_slot(url)


async def test_async_client_at_capacity(peer_servers: PeerServers) -> None:
    url = peer_servers.small.url
    await asyncio.to_thread(wait_for_free_slot, url)
    async with corral.AsyncEnvClient(url, observation_type=EchoObservation) as holder:
        assert_reset(await holder.reset())
        for settle in (0.0, 0.2):  # the refusal may arrive before or after the first request is sent
            extra = await corral.AsyncEnvClient(url, observation_type=EchoObservation).connect()
            await asyncio.sleep(settle)
            with pytest.raises(corral.CapacityReached, match="capacity") as refused:
                await extra.reset()
            assert refused.value.details["max_sessions"] == PEER_CAPACITY
            await extra.close()
            await extra.close()
            with pytest.raises(corral.ClientClosed):
                await extra.state()
        assert_echo(await holder.step({"message": "hi"}), "hi")
    await asyncio.to_thread(wait_for_free_slot, url)

