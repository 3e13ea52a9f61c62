"""mastermind's tests: scoring, conformance, reproducible seeds, a scripted policy that cracks every code,
truncation, invalid guesses, and a real client session."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from corral.errors import InvalidAction
from corral.testing import InProcessClient, check_env, check_package, play_locally

from corral_mastermind import MastermindAction, MastermindEnvironment, MastermindObservation, score
from corral_mastermind.code import all_codes
from corral_mastermind.policies import random as random_policy
from corral_mastermind.policies import scripted

ROOT = Path(__file__).resolve().parents[1]


def play(seed: int | None = None, **options: object) -> tuple[float, list[dict[str, object]]]:
    return play_locally(MastermindEnvironment(), scripted, seed=seed, **options)


@pytest.mark.parametrize(("guess", "code", "marks"), [
    ("ABCD", "ABCD", (4, 0)),
    ("ABCD", "DCBA", (0, 4)),
    ("AABB", "ABBB", (3, 0)),
    ("AABC", "CAAD", (1, 2)),
    ("AAAA", "ABCD", (1, 0)),
    ("ABCD", "AAAA", (1, 0)),
    ("EEFF", "ABCD", (0, 0)),
    ("ABBA", "BAAB", (0, 4)),
])
def test_scoring_matches_each_peg_once(guess: str, code: str, marks: tuple[int, int]) -> None:
    assert score(guess, code) == marks


def test_conformance() -> None:
    check_env(MastermindEnvironment, sample_action=MastermindAction(guess="AABB"))


def test_the_package_validates() -> None:
    report = check_package(ROOT, runtime=None)
    assert report.ok, str(report)


def _code(seed: int) -> str:
    env = MastermindEnvironment()
    env.reset(seed=seed)
    return env.state.code


def test_same_seed_same_episode() -> None:
    assert play(7) == play(7)
    assert len({_code(seed) for seed in range(20)}) > 10


def test_scripted_policy_cracks_every_code_within_the_default_guesses() -> None:
    codes = all_codes(6, 4)
    assert len(codes) == 1296
    for code in codes:
        total, trace = play(code=code)
        assert total == 1.0, code
        assert len(trace) - 1 <= 8, code


def test_scripted_policy_reaches_the_maximum_reward_on_seeds_and_other_sizes() -> None:
    for seed in range(10):
        assert play(seed)[0] == 1.0
        assert play(seed, pegs=3, colors=5)[0] == 1.0


def test_cracking_terminates_with_reward_and_reveals_the_code() -> None:
    env = MastermindEnvironment()
    first = env.reset(code="ABCD").observation
    assert first.code is None
    assert (first.guesses_left, first.pegs, first.colors) == (10, 4, "ABCDEF")
    result = env.step(MastermindAction(guess="DCBA"))
    assert not result.done
    assert result.reward == 0.0
    assert (result.observation.guesses[0].exact, result.observation.guesses[0].partial) == (0, 4)
    result = env.step(MastermindAction(guess=" ab cd "))
    assert result.terminated
    assert not result.truncated
    assert result.reward == 1.0
    assert result.observation.code == "ABCD"
    assert env.state.solved


def test_truncated_after_the_last_wrong_guess() -> None:
    env = MastermindEnvironment()
    env.reset(code="ABCD", max_guesses=3)
    assert not env.step(MastermindAction(guess="AAAA")).done
    assert not env.step(MastermindAction(guess="BBBB")).done
    result = env.step(MastermindAction(guess="CCCC"))
    assert result.truncated
    assert not result.terminated
    assert result.reward == 0.0
    assert result.observation.guesses_left == 0
    assert result.observation.code == "ABCD"


@pytest.mark.parametrize("guess", ["ABC", "ABCDE", "ABCG", "AB1D", ""])
def test_an_invalid_guess_is_refused_and_costs_nothing(guess: str) -> None:
    env = MastermindEnvironment()
    env.reset(seed=1)
    with pytest.raises(InvalidAction, match="4 letters from ABCDEF") as caught:
        env.step(MastermindAction(guess=guess))
    assert caught.value.errors[0]["loc"] == ["guess"]
    assert env.state.step_count == 0
    assert env.state.guesses == []


@pytest.mark.parametrize(("options", "why"), [
    ({"pegs": 1}, "pegs"), ({"colors": 9}, "colors"), ({"max_guesses": True}, "max_guesses"),
    ({"code": "ABCG"}, "code"), ({"code": "AB", "pegs": 3}, "code"), ({"code": 1234}, "code"),
    ({"colours": 6}, "unknown reset option"),
])
def test_bad_reset_options_are_refused(options: dict[str, object], why: str) -> None:
    with pytest.raises(InvalidAction, match=why):
        MastermindEnvironment().reset(seed=0, **options)


def test_random_policy_makes_valid_guesses() -> None:
    env = MastermindEnvironment()
    result = env.reset(seed=2, pegs=5, colors=8, max_guesses=30)
    rng = random.Random(2)
    while not result.done:
        result = env.step(random_policy(result.observation, rng))
    assert env.state.step_count == len(result.observation.guesses)


def test_a_session_through_the_server() -> None:
    with InProcessClient(MastermindEnvironment, observation_type=MastermindObservation) as client:
        result = client.reset(seed=4, colors=4)
        assert result.observation.colors == "ABCD"
        with pytest.raises(InvalidAction, match="letters from ABCD"):
            client.step(MastermindAction(guess="EEEE"))
        result = client.step(MastermindAction(guess="AABB"))
        assert result.observation.guesses[0].guess == "AABB"
        assert client.state().step_count == 1
        while not result.done:
            result = client.step(scripted(result.observation, random.Random(0)))
        assert result.terminated
        assert result.reward == 1.0
