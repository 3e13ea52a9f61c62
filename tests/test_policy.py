"""Policies by name: beside the environment, in a package's policies module, or as module:function."""

from __future__ import annotations

import random

import pytest

from corral.envs.echo import EchoAction, EchoEnvironment, EchoObservation
from corral.envs.guess import GuessEnvironment, GuessObservation
from corral.errors import UsageError
from corral.policy import load_policy


def test_builtin_policies_are_found_beside_the_environment() -> None:
    scripted = load_policy("scripted", GuessEnvironment)
    observation = GuessObservation(hint="start", low=1, high=100, attempts_left=8)
    assert scripted(observation, random.Random(0)).guess == 50  # type: ignore[union-attr]
    rand = load_policy("random", EchoEnvironment)
    action = rand(EchoObservation(echoed_message="", message_length=0), random.Random(1))
    assert isinstance(action, EchoAction)


def test_a_module_function_is_a_policy() -> None:
    assert load_policy("corral.envs.guess:bisect_policy", GuessEnvironment) is not None


def test_a_module_named_like_a_policy_is_not_one() -> None:
    # echo.py imports the random module; it must not be taken for the 'random' policy.
    assert callable(load_policy("random", EchoEnvironment))
    with pytest.raises(UsageError, match="not a function"):
        load_policy("corral.envs.echo:random", EchoEnvironment)


def test_unknown_policy_says_where_to_declare_it() -> None:
    with pytest.raises(UsageError, match="declare it under 'policies:'"):
        load_policy("greedy", GuessEnvironment)
