"""Many sessions over one connection: ``client.sessions(n)`` with batched reset and step."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from corral.client import AsyncEnvClient, EnvClient
from corral.envs.guess import GuessObservation
from corral.errors import ClientClosed, EnvironmentFailed, InvalidAction, ProtocolError, ResetNeeded, UsageError

from ..support import CountingEnv, CountObservation, RunningServer, wait_until


def test_sessions_reset_and_step_in_batches(start_server: Any) -> None:
    CountingEnv.reset_counters()
    server = start_server(CountingEnv)
    with EnvClient(server.url, observation_type=CountObservation, open_session=False) as client:
        group = client.sessions(4)
        assert len(group) == 4
        assert len(set(group.ids)) == 4
        assert set(group.ids) == set(server.manager.sessions)
        resets = group.reset()
        assert [r.observation.total for r in resets] == [0, 0, 0, 0]
        results = group.step([{"n": n} for n in (1, 2, 3, 4)])
        assert [r.observation.total for r in results if r is not None] == [1, 2, 3, 4]
        assert all(isinstance(r.observation, CountObservation) for r in results if r is not None)
        results = group.step([{"n": 10}, None, {"n": 10}, None])
        assert [r.observation.total if r else None for r in results] == [11, None, 13, None]
        group.close()
        group.close()
        wait_until(lambda: not server.manager.sessions)
        assert CountingEnv.closed == 4


def test_batched_guess_matches_single_sessions(guess_server: RunningServer) -> None:
    seeds: list[int | None] = [1, 2, 3]
    with EnvClient(guess_server.url, observation_type=GuessObservation) as client:
        with client.sessions(3) as group:
            batched = [r.observation for r in group.reset(seeds=seeds, high=1000)]
            stepped = group.step([{"guess": 500}] * 3)
        singles = []
        for seed in seeds:
            client.reset(seed=seed, high=1000)
            singles.append(client.step({"guess": 500}).observation)
    assert [r.observation if r else None for r in stepped] == singles
    assert all(o.hint == "start" for o in batched)


def test_batch_errors(start_server: Any) -> None:
    server = start_server(CountingEnv)
    with EnvClient(server.url, action_type=None) as client:
        group = client.sessions(2)
        with pytest.raises(ResetNeeded):
            group.step([{"n": 1}, {"n": 1}])
        group.reset()
        with pytest.raises(UsageError, match="2 sessions"):
            group.step([{"n": 1}])
        with pytest.raises(InvalidAction):
            group.step([{"n": 1}, {"n": "two"}])
        assert [r.observation.model_dump()["total"] for r in group.step([{"n": 1}, {"n": 1}]) if r] == [2, 1]


def test_results_that_do_not_match_the_observation_type(start_server: Any) -> None:
    server = start_server(CountingEnv)
    with EnvClient(server.url, observation_type=GuessObservation) as client:  # the wrong type
        with pytest.raises(ProtocolError, match="GuessObservation"):
            client.reset()
        group = client.sessions(2)
        with pytest.raises(ProtocolError, match="GuessObservation"):
            group.reset()


def test_client_close_closes_its_groups(start_server: Any) -> None:
    CountingEnv.reset_counters()
    server = start_server(CountingEnv)
    client = EnvClient(server.url)
    group = client.sessions(3)
    group.reset()
    client.close()
    wait_until(lambda: server.manager.active == 0)
    wait_until(lambda: CountingEnv.closed == 4)  # close() runs just after the slot is freed
    with pytest.raises(ClientClosed):
        group.step([{"n": 1}] * 3)


def test_sync_groups_resume_after_a_drop(start_server: Any) -> None:
    server = start_server(CountingEnv, lease_s=30)
    with EnvClient(server.url, observation_type=CountObservation) as client:
        group = client.sessions(3)
        group.reset()
        group.step([{"n": 1}] * 3)
        assert client._ws is not None
        client._ws.socket.shutdown(socket.SHUT_RDWR)
        results = group.step([{"n": 2}] * 3)
        assert [r.observation.total for r in results if r] == [3, 3, 3]
        assert len(server.manager.sessions) == 4


async def test_async_sessions(start_server: Any) -> None:
    CountingEnv.reset_counters()
    server = start_server(CountingEnv)
    async with AsyncEnvClient(server.url, observation_type=CountObservation, open_session=False) as client:
        async with await client.sessions(5) as group:
            assert len(group) == 5
            await group.reset()
            results = await group.step([{"n": i} for i in range(5)])
            assert [r.observation.total for r in results if r] == [0, 1, 2, 3, 4]
            results = await group.step([None, None, {"n": 7}, None, None])
            assert [r.observation.total if r else None for r in results] == [None, None, 9, None, None]
            with pytest.raises(UsageError):
                await group.step([{"n": 1}])
        wait_until(lambda: not server.manager.sessions)
        assert CountingEnv.closed == 5


async def test_async_groups_resume_after_a_drop(start_server: Any) -> None:
    server = start_server(CountingEnv, lease_s=30)
    async with AsyncEnvClient(server.url, observation_type=CountObservation) as client:
        group = await client.sessions(2)
        await group.reset()
        await group.step([{"n": 1}] * 2)
        assert client._ws is not None
        client._ws.transport.abort()
        results = await group.step([{"n": 1}] * 2)
        assert [r.observation.total for r in results if r] == [2, 2]


def test_open_with_reset_is_one_round_trip(guess_server: RunningServer) -> None:
    seeds: list[int | None] = [4, 5, 6]
    with EnvClient(guess_server.url, observation_type=GuessObservation) as client:
        with client.sessions(3, seeds=seeds, high=1000) as group:
            assert group.results is not None
            assert [r.observation.high for r in group.results] == [1000] * 3
            stepped = group.step([{"guess": 500}] * 3)
        with client.sessions(3) as plain:
            assert plain.results is None
            plain.reset(seeds=seeds, high=1000)
            again = plain.step([{"guess": 500}] * 3)
    assert [r.observation if r else None for r in stepped] == [r.observation if r else None for r in again]


async def test_async_open_with_reset(guess_server: RunningServer) -> None:
    async with AsyncEnvClient(guess_server.url, observation_type=GuessObservation) as client:
        group = await client.sessions(2, reset=True)
        assert group.results is not None
        assert [r.observation.hint for r in group.results] == ["start", "start"]
        stepped = await group.step([{"guess": 50}, {"guess": 50}])
        assert all(r is not None and r.observation.attempts_left == 7 for r in stepped)
        await group.close()


def test_open_with_reset_refuses_bad_input(guess_server: RunningServer) -> None:
    with EnvClient(guess_server.url, observation_type=GuessObservation) as client:
        with pytest.raises(UsageError, match="got 1 seeds"):
            client.sessions(2, seeds=[1])
        with pytest.raises(EnvironmentFailed, match="max_attempts"):
            client.sessions(1, max_attempts=0)
        core = client._core
        bad = client._request(core.request("open", {"count": 2, "reset": [{}]}))
        assert bad["type"] == "error"
        assert "one such object per session" in bad["data"]["message"]
        assert client.reset(seed=1).observation.hint == "start"  # the connection carries on
