from __future__ import annotations

import asyncio
import time

import pytest

from corral import ServerConfig, State
from corral.client import EnvClient, LinkState, Timeouts
from corral.envs.echo import EchoEnvironment, EchoObservation
from corral.envs.guess import GuessEnvironment, GuessState, bisect_policy
from corral.errors import (
    CapacityReached,
    ClientClosed,
    DeadlineExceeded,
    EnvironmentFailed,
    FactoryError,
    InvalidAction,
    ResetNeeded,
    SeedNotSupported,
    TransportError,
    Unauthorized,
    UsageError,
)
from corral.testing import AsyncInProcessClient, InProcessClient
from corral.testing.inprocess import Dialect

from .envs import FlipEnv, SlowEnv


def test_public_methods_match_the_real_clients() -> None:
    public = {name for name in dir(EnvClient) if not name.startswith("_")}
    assert public <= {name for name in dir(InProcessClient) if not name.startswith("_")}
    async_public = {name for name in dir(AsyncInProcessClient) if not name.startswith("_")}
    assert public <= async_public


def test_echo_round_trip_speaks_corral_1() -> None:
    with InProcessClient(EchoEnvironment) as env:
        assert env.dialect == "corral/1"
        assert env.session_id is not None
        assert env.hello["env"] == {"name": "echo", "version": "1.0.0"}
        first = env.reset(episode_id="e-1")
        assert isinstance(first.observation, EchoObservation)
        assert first.observation.echoed_message == "Echo environment ready!"
        result = env.step({"message": "hi"})
        assert (result.observation.echoed_message, result.reward, result.done) == ("hi", pytest.approx(0.2), False)
        state = env.state()
        assert (state.episode_id, state.step_count) == ("e-1", 1)


def test_guess_plays_a_whole_seeded_episode_with_typed_results_and_tools() -> None:
    with InProcessClient(GuessEnvironment) as env:
        result = env.reset(seed=3)
        assert env.call_tool("range_size") == 100
        assert [tool["name"] for tool in env.list_tools()] == ["range_size"]
        while not result.done:
            result = env.step(bisect_policy(result.observation))
        assert result.terminated
        assert result.reward == 1.0
        state = env.state()
        assert isinstance(state, GuessState)
        assert state.found
        with pytest.raises(ResetNeeded):
            env.step({"guess": 1})


def test_errors_raise_the_client_error_classes() -> None:
    with InProcessClient(GuessEnvironment) as env:
        with pytest.raises(ResetNeeded):
            env.step({"guess": 5})
        env.reset()
        with pytest.raises(InvalidAction) as invalid:
            env.step({"guess": -1})
        assert invalid.value.errors[0]["loc"] == ["guess"]
        with pytest.raises(UsageError, match="unknown tool"):
            env.call_tool("nope")
        assert env.step({"guess": 50}).observation.hint in ("higher", "lower", "correct")


def test_environment_failures_seed_refusals_and_deadlines() -> None:
    with InProcessClient(SlowEnv) as env:
        with pytest.raises(SeedNotSupported):
            env.reset(seed=1)
        env.reset()
        with pytest.raises(EnvironmentFailed, match="broken on purpose"):
            env.step({"fail": True})
        assert env.state().step_count == 0
        with pytest.raises(DeadlineExceeded):
            env.step({"delay": 5}, deadline=0.05)


def test_close_is_idempotent_closes_every_instance_and_refuses_later_use() -> None:
    FlipEnv.closed = 0
    env = InProcessClient(FlipEnv)
    with env:
        env.reset(seed=1)
        group = env.sessions(2)
        assert len(group) == 2
    assert FlipEnv.closed == 3
    assert env.state_ is LinkState.CLOSED
    assert env.closed
    env.close()
    with pytest.raises(ClientClosed):
        env.reset()
    with pytest.raises(ClientClosed):
        env.connect()


def test_closing_a_client_that_never_connected() -> None:
    env = InProcessClient(EchoEnvironment)
    env.close()
    with pytest.raises(ClientClosed):
        env.step({"message": "late"})


def test_sessions_are_batched_and_independent() -> None:
    FlipEnv.closed = 0
    with InProcessClient(GuessEnvironment) as env, env.sessions(3) as group:
        firsts = group.reset(seeds=[1, 1, 2])
        assert [r.observation.hint for r in firsts] == ["start"] * 3
        results = group.step([{"guess": 50}, {"guess": 50}, {"guess": 50}])
        assert results[0] == results[1]
        assert env.state().step_count == 0


def test_session_batches_respect_capacity() -> None:
    with InProcessClient(EchoEnvironment, ServerConfig(capacity=1)) as env, pytest.raises(CapacityReached):
        env.sessions(1)


def test_token_auth() -> None:
    config = ServerConfig(token="s3cret")
    refused = InProcessClient(EchoEnvironment, config)
    with pytest.raises(Unauthorized):
        refused.connect()
    refused.close()
    with InProcessClient(EchoEnvironment, config, token="s3cret") as env:
        assert env.reset().observation.message_length == 0


def test_a_refused_handshake_raises_the_servers_error() -> None:
    class Unbuildable(FlipEnv):
        def __init__(self) -> None:
            raise OSError("no disk")

    env = InProcessClient(Unbuildable)
    with pytest.raises(FactoryError, match="no disk"):
        env.reset()
    env.close()


def test_compat_dialect_has_no_hello_and_no_batches() -> None:
    with InProcessClient(EchoEnvironment, dialect="compat") as env:
        assert env.dialect == "compat"
        assert env.session_id is None
        assert env.hello == {}
        env.reset()
        assert env.step({"message": "abc"}).observation.message_length == 3
        assert env.state().step_count == 1
        with pytest.raises(UsageError, match="corral/1"):
            env.sessions(2)


def test_msgpack_codec() -> None:
    with InProcessClient(EchoEnvironment, codec="msgpack") as env:
        assert env.hello["codec"] == "msgpack"
        env.reset()
        assert env.step({"message": "packed"}).observation.echoed_message == "packed"


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(UsageError, match="dialect"):
        InProcessClient(EchoEnvironment, dialect="v2")  # type: ignore[arg-type]


def test_environment_by_name_and_untyped_results() -> None:
    with InProcessClient("guess", state_type=State) as env:
        env.reset(seed=1)
        assert type(env.state()) is State


async def test_async_client_runs_on_the_callers_loop() -> None:
    FlipEnv.closed = 0
    async with AsyncInProcessClient(FlipEnv) as env:
        await env.reset(seed=7)
        results = await asyncio.gather(*(env.step({"call": "tails"}) for _ in range(3)))
        assert sum(r.reward or 0.0 for r in results) == max(r.observation.score for r in results)
        state, tools = await asyncio.gather(env.state(), env.list_tools())
        assert state.step_count == 3
        assert tools == []
        async with await env.sessions(2) as group:
            assert [r.reward for r in await group.reset(seeds=[1, 1])] == [None, None]
            first, second = await group.step([{"call": "heads"}, {"call": "heads"}])
            assert first == second
    assert FlipEnv.closed == 3
    with pytest.raises(ClientClosed):
        await env.state()


async def test_async_client_deadline_and_errors() -> None:
    async with AsyncInProcessClient(SlowEnv) as env:
        with pytest.raises(ResetNeeded):
            await env.step({})
        await env.reset()
        with pytest.raises(DeadlineExceeded):
            await env.step({"delay": 5}, deadline=0.05)


async def test_the_blocking_client_works_inside_a_running_loop() -> None:
    with InProcessClient(EchoEnvironment) as env:
        env.reset()
        assert env.step({"message": "nested"}).observation.echoed_message == "nested"


class SlowCloseEnv(FlipEnv):
    def close(self) -> None:
        time.sleep(0.2)  # on a worker thread: the app is mid-close while the client closes
        super().close()


@pytest.mark.parametrize("dialect", ["corral/1", "compat"])
def test_close_waits_for_instances_that_close_slowly(dialect: Dialect) -> None:
    SlowCloseEnv.closed = 0
    with InProcessClient(SlowCloseEnv, dialect=dialect) as env:
        env.reset()
        if dialect == "corral/1":
            env.sessions(2).close()
            env.sessions(1)
    assert SlowCloseEnv.closed == (4 if dialect == "corral/1" else 1)


async def test_async_close_waits_for_instances_that_close_slowly() -> None:
    SlowCloseEnv.closed = 0
    async with AsyncInProcessClient(SlowCloseEnv) as env:
        await env.reset()
        await (await env.sessions(2)).close()
        await env.sessions(1)
    assert SlowCloseEnv.closed == 4


def test_a_compat_timeout_closes_the_client() -> None:
    with InProcessClient(SlowEnv, dialect="compat", timeouts=Timeouts(request=0.1)) as env:
        env.reset()
        with pytest.raises(TransportError, match="no reply"):
            env.step({"delay": 0.5})
        assert env.closed
        with pytest.raises(ClientClosed):
            env.state()


async def test_async_compat_timeout_closes_the_client() -> None:
    async with AsyncInProcessClient(SlowEnv, dialect="compat", timeouts=Timeouts(request=0.1)) as env:
        await env.reset()
        with pytest.raises(TransportError, match="no reply"):
            await env.step({"delay": 0.5})
        assert env.closed
