"""Helpers of the isolation tests, for any tier: drive one hostile attempt, check a bystander still serves."""

from __future__ import annotations

import time

import pytest

from corral.errors import ConnectionLost, EnvironmentFailed
from corral.runtime import Server

from .hostile_env import HostileAction, HostileObservation


def attempt(server: Server, attempt: str, target: str = "", amount: int = 0) -> HostileObservation:
    """Open a session on ``server``'s hostile environment and make one ``attempt``; its observation."""
    with server.client(action_type=HostileAction, observation_type=HostileObservation) as env:
        env.reset()
        result = env.step(HostileAction(attempt=attempt, target=target, amount=amount))
    observation = result.observation
    assert isinstance(observation, HostileObservation)
    return observation


def assert_serving(server: Server) -> None:
    """``server`` (an echo server) still answers a session."""
    with server.client() as env:
        env.reset()
        assert env.step({"message": "still here"}).observation.model_dump()["echoed_message"] == "still here"


def expect_memory_error(hostile: Server, bystander: Server) -> None:
    """Allocating past the memory limit fails that step; the server and the bystander go on."""
    with pytest.raises(EnvironmentFailed, match="MemoryError"):
        attempt(hostile, "allocate", amount=2048)
    assert attempt(hostile, "echo", "alive").detail == "alive"
    assert_serving(bystander)


def expect_fork_stopped(hostile: Server, bystander: Server) -> None:
    """An unbounded fork stops at the process limit; the server and the bystander go on."""
    with pytest.raises(EnvironmentFailed, match="fork failed after"):
        attempt(hostile, "fork", amount=5000)
    assert attempt(hostile, "echo", "alive").detail == "alive"
    assert_serving(bystander)


def expect_cpu_kill(hostile: Server, bystander: Server, reason: str) -> None:
    """Spinning past the CPU limit kills the server (its exit reason says ``reason``); the bystander goes on."""
    started = time.monotonic()
    with pytest.raises(ConnectionLost):
        attempt(hostile, "spin", amount=60)
    assert time.monotonic() - started < 30
    deadline = time.monotonic() + 5
    while hostile.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert reason in (hostile.exit_reason() or "")
    assert_serving(bystander)
