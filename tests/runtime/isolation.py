"""Helpers of the isolation tests, for any tier: drive one hostile attempt, check a bystander still serves."""

from __future__ import annotations

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
