"""The built-in environments, used directly (no server)."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from corral.envs import BUILTINS, resolve
from corral.envs.echo import EchoAction, EchoEnvironment, EchoObservation
from corral.envs.guess import GuessAction, GuessEnvironment, GuessState, bisect_policy
from corral.errors import UsageError


def test_echo() -> None:
    env = EchoEnvironment()
    first = env.reset(episode_id="e1")
    assert first.observation == EchoObservation(echoed_message="Echo environment ready!", message_length=0)
    assert first.reward == 0.0
    assert not first.done
    result = env.step(EchoAction(message="hello"))
    assert result.observation.echoed_message == "hello"
    assert result.observation.message_length == 5
    assert result.reward == pytest.approx(0.5)
    assert not result.done
    assert (env.state.episode_id, env.state.step_count) == ("e1", 1)
    env.reset()
    assert env.state.step_count == 0
    assert env.state.episode_id not in (None, "e1")
    env.close()
    env.close()


def test_echo_declarations() -> None:
    assert EchoEnvironment.inline is True
    assert EchoEnvironment.info.name == "echo"
    assert EchoEnvironment.tool_specs() == {}


def test_guess_seed_reproduces_the_secret() -> None:
    def play(seed: int) -> list[str]:
        env = GuessEnvironment()
        env.reset(seed=seed, high=1000)
        return [env.step(GuessAction(guess=g)).observation.hint for g in (100, 500, 900)]

    assert play(3) == play(3)
    assert any(play(s) != play(3) for s in range(4, 20))


@pytest.mark.parametrize("high", [1, 2, 7, 100, 1000])
def test_bisect_policy_always_wins(high: int) -> None:
    limit = max(1, math.ceil(math.log2(high + 1)))
    for seed in range(20):
        env = GuessEnvironment()
        result = env.reset(seed=seed, high=high, max_attempts=limit)
        while not result.done:
            result = env.step(bisect_policy(result.observation))
        assert result.terminated, (high, seed)
        assert not result.truncated
        assert result.reward == 1.0
        assert env.state.found
        assert env.state.step_count <= limit


def test_guess_truncates_after_max_attempts() -> None:
    env = GuessEnvironment()
    env.reset(seed=0, high=1000, max_attempts=2)
    results = [env.step(GuessAction(guess=0)) for _ in range(2)]
    assert [r.truncated for r in results] == [False, True]
    assert all(not r.terminated and r.reward == pytest.approx(-0.05) for r in results)
    assert results[0].observation.hint == "higher"
    assert isinstance(env.state, GuessState)
    assert env.state.attempts_left == 0


def test_guess_hints_narrow_the_range() -> None:
    env = GuessEnvironment()
    observation = env.reset(seed=5, high=100).observation
    assert (observation.hint, observation.low, observation.high, observation.attempts_left) == ("start", 1, 100, 8)
    assert env.range_size() == 100
    result = env.step(GuessAction(guess=50))
    if result.observation.hint == "higher":
        assert result.observation.low == 51
    elif result.observation.hint == "lower":
        assert result.observation.high == 49
    assert env.range_size() == result.observation.high - result.observation.low + 1


@pytest.mark.parametrize("options", [{"high": 0}, {"max_attempts": 0}])
def test_guess_bad_options(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        GuessEnvironment().reset(**options)


def test_guess_action_bounds() -> None:
    with pytest.raises(ValidationError):
        GuessAction(guess=-1)
    with pytest.raises(ValidationError):
        GuessAction(guess=1_000_001)


def test_guess_tools() -> None:
    specs = GuessEnvironment.tool_specs()
    assert list(specs) == ["range_size"]
    spec = specs["range_size"]
    assert spec.description == "How many numbers are still possible."
    assert spec.listing()["input_schema"] == spec.input_schema
    assert spec.validate({}) == {}


def test_resolve_builtins() -> None:
    assert set(BUILTINS) == {"echo", "guess"}
    assert resolve("echo") is EchoEnvironment
    assert resolve("guess") is GuessEnvironment
    assert resolve("corral.envs.guess:GuessEnvironment") is GuessEnvironment


@pytest.mark.parametrize(
    ("spec", "hint"),
    [("nope", "unknown environment 'nope'"), ("corral.envs.nothing:X", "cannot import"),
     ("corral.envs.guess:GuessAction", "not a corral Environment"), ("corral.envs.guess:missing", "has no attribute"),
     ("module:", "package.module:Name"), ("./no/such/folder", "does not exist")],
)
def test_resolve_errors(spec: str, hint: str) -> None:
    with pytest.raises(UsageError, match=hint):
        resolve(spec)
