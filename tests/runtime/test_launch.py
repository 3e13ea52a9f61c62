"""``EnvClient.launch`` / ``AsyncEnvClient.launch``: the client owns its server and stops it on close."""

from __future__ import annotations

import time

import pytest

from corral import AsyncEnvClient, EnvClient
from corral.envs.echo import EchoAction, EchoObservation
from corral.errors import RuntimeFailed, UsageError
from corral.runtime.pool import WarmPool
from corral.runtime.sandbox import sandbox_available

TIERS = ["inprocess", "subprocess", pytest.param("sandbox", marks=pytest.mark.skipif(
    not sandbox_available()[0], reason=f"no bubblewrap sandboxes here: {sandbox_available()[1]}"))]


@pytest.mark.parametrize("tier", TIERS)
def test_blocking_launch_stops_its_server(tier: str) -> None:
    with EnvClient.launch("echo", runtime=tier, observation_type=EchoObservation) as env:
        env.reset()
        result = env.step(EchoAction(message="hey"))
        server = env.server
        assert server is not None
        assert server.alive()
    assert result.observation.echoed_message == "hey"
    assert not server.alive()
    assert env.server is None
    env.close()  # idempotent


@pytest.mark.parametrize("tier", TIERS)
async def test_async_launch_as_context_and_awaited(tier: str) -> None:
    async with AsyncEnvClient.launch("echo", runtime=tier, observation_type=EchoObservation) as env:
        await env.reset()
        assert (await env.step(EchoAction(message="ab"))).reward == pytest.approx(0.2)
        server = env.server
    assert not server.alive()
    client = await AsyncEnvClient.launch("echo", runtime=tier)
    await client.reset()
    server = client.server
    await client.close()
    assert not server.alive()


def test_launch_from_a_pool_gives_the_server_back() -> None:
    with WarmPool("echo", "subprocess", size=1) as pool:
        with EnvClient.launch(pool=pool) as env:
            env.reset()
            server = env.server
        deadline = time.monotonic() + 5
        while server.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not server.alive()  # used: destroyed, not reused
        assert pool.stats.acquired == 1
        with pytest.raises(UsageError, match="another environment"):
            EnvClient.launch("guess", pool=pool)


def test_launch_failures_are_clear() -> None:
    with pytest.raises(UsageError, match="needs an environment"):
        EnvClient.launch()
    with pytest.raises(UsageError, match="unknown runtime"):
        EnvClient.launch("echo", runtime="moon")
    with pytest.raises(RuntimeFailed, match="cannot import"):
        EnvClient.launch("nowhere:Env", runtime="subprocess")
