"""coding's tests: conformance, reproducible seeds, a reachable maximum reward, and a real client session."""

from __future__ import annotations

import random

from corral.testing import InProcessClient, check_env

from corral_coding import CodingAction, CodingEnvironment, CodingObservation
from corral_coding.policies import scripted


def play(seed: int) -> tuple[float, list[dict[str, object]]]:
    env = CodingEnvironment()
    result = env.reset(seed=seed)
    total, trace = 0.0, [result.observation.model_dump()]
    rng = random.Random(seed)
    while not result.done:
        result = env.step(scripted(result.observation, rng))
        total += result.reward or 0.0
        trace.append(result.observation.model_dump())
    return total, trace


def test_conformance() -> None:
    check_env(CodingEnvironment, sample_action=CodingAction(delta=1))


def test_same_seed_same_episode() -> None:
    assert play(3) == play(3)
    assert play(3) != play(4) or play(3)[1][0]["target"] == play(4)[1][0]["target"]


def test_scripted_policy_reaches_the_maximum_reward() -> None:
    for seed in range(5):
        assert play(seed)[0] == 1.0


def test_truncated_after_max_steps() -> None:
    env = CodingEnvironment()
    env.reset(seed=0, max_steps=2)
    env.step(CodingAction(delta=-1))
    result = env.step(CodingAction(delta=-1))
    assert result.truncated and not result.terminated


def test_a_session_through_the_server() -> None:
    with InProcessClient(CodingEnvironment, observation_type=CodingObservation) as client:
        result = client.reset(seed=1)
        assert result.observation.counter == 0
        result = client.step(CodingAction(delta=1))
        assert result.observation.counter == 1
        assert client.state().step_count == 1
