"""Warm pools hand out ready, isolated servers, refill in the background, and never reuse a used one
unless the environment says reset restores it."""

from __future__ import annotations

import asyncio
import time

import pytest

from corral.envs.echo import EchoAction, EchoEnvironment
from corral.errors import RuntimeFailed, UsageError
from corral.runtime import Server
from corral.runtime.pool import WarmPool
from corral.runtime.sandbox import sandbox_available

from .conftest import processes_with

TIERS = ["subprocess", pytest.param("sandbox", marks=pytest.mark.skipif(
    not sandbox_available()[0], reason=f"no bubblewrap sandboxes here: {sandbox_available()[1]}"))]


class RestoringEcho(EchoEnvironment):
    reset_restores = True


def step_once(server: Server) -> float:
    with server.client() as env:
        env.reset()
        return env.step(EchoAction(message="abc")).reward or 0.0


@pytest.mark.parametrize("tier", TIERS)
def test_acquire_is_ready_and_used_servers_are_destroyed(tier: str) -> None:
    with WarmPool("echo", tier, size=2) as pool:
        pool.wait_full(30)
        first = pool.acquire()
        assert step_once(first) == pytest.approx(0.3)
        pool.release(first)
        deadline = time.monotonic() + 10
        while (first.alive() or pool.ready < 2) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not first.alive(), "a used server went back to the pool"
        assert pool.ready == 2, "the pool did not refill"
        second = pool.acquire()
        assert second is not first
        pool.release(second)
        assert pool.stats.acquired == 2
        assert pool.stats.reused == 0
        folders = [getattr(s, "folder", None) for s in list(pool._ready)]
    assert pool.ready == 0
    for folder in folders:
        assert folder is not None
        assert not folder.exists()
        assert not processes_with(folder.name)


def test_environments_that_declare_reset_restores_are_reused() -> None:
    with WarmPool(f"{__name__}:RestoringEcho", "subprocess", size=1) as pool:
        assert pool.reuse
        server = pool.acquire()
        step_once(server)
        pool.release(server)
        assert pool.acquire() is server
        pool.release(server)
        assert pool.stats.reused == 2


def test_with_block_releases() -> None:
    with WarmPool("echo", "inprocess", size=1) as pool:
        with pool.server() as server:
            assert step_once(server) == pytest.approx(0.3)
        deadline = time.monotonic() + 5
        while server.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not server.alive()


async def test_async_acquire() -> None:
    with WarmPool("echo", "inprocess", size=1) as pool:
        server = await pool.aacquire()
        async with server.async_client() as env:
            await env.reset()
            assert (await env.step(EchoAction(message="ab"))).reward == pytest.approx(0.2)
        pool.release(server)
        await asyncio.sleep(0)


def test_a_pool_that_cannot_start_says_why() -> None:
    with WarmPool("no_such_module:Env", "subprocess", size=1, max_failures=2) as pool:
        with pytest.raises(RuntimeFailed, match="cannot import"):
            pool.acquire(timeout=30)
        assert pool.stats.failed >= 2


def test_closed_pool_refuses() -> None:
    pool = WarmPool("echo", "inprocess", size=1)
    pool.close()
    pool.close()
    with pytest.raises(UsageError, match="closed"):
        pool.acquire()
    with pytest.raises(UsageError, match="size"):
        WarmPool("echo", "inprocess", size=0)
