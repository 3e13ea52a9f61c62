"""The typed shapes: actions, observations, state, results."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from corral import Action, EnvInfo, Observation, State, StepResult
from corral.errors import (
    CapacityReached,
    CorralError,
    InvalidAction,
    InvalidFrame,
    ResetNeeded,
    SessionError,
    TransportError,
    UsageError,
    error_for_code,
)


class Move(Action):
    dx: int
    dy: int = 0


class Seen(Observation):
    cells: list[int]


def test_action_refuses_unknown_fields() -> None:
    assert Move(dx=1).dy == 0
    with pytest.raises(ValidationError):
        Move.model_validate({"dx": 1, "dz": 2})
    assert Move(dx=1).metadata == {}


def test_observation_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Seen.model_validate({"cells": [], "extra": 1})
    assert Seen(cells=[1]).model_dump() == {"metadata": {}, "cells": [1]}


def test_state_allows_env_fields() -> None:
    state = State.model_validate({"episode_id": "e", "step_count": 3, "score": 9})
    assert (state.episode_id, state.step_count) == ("e", 3)
    assert state.model_dump() == {"episode_id": "e", "step_count": 3, "score": 9}
    assert State().model_dump() == {"episode_id": None, "step_count": 0}


@pytest.mark.parametrize(("terminated", "truncated"), [(False, False), (True, False), (False, True), (True, True)])
def test_done_is_derived(terminated: bool, truncated: bool) -> None:
    result = StepResult(observation=Seen(cells=[]), terminated=terminated, truncated=truncated)
    assert result.done is (terminated or truncated)
    assert "done" not in result.model_dump()


def test_step_result_defaults_and_generic_validation() -> None:
    result = StepResult[Seen].model_validate({"observation": {"cells": [1, 2]}})
    assert isinstance(result.observation, Seen)
    assert (result.reward, result.terminated, result.truncated, result.info) == (None, False, False, {})
    with pytest.raises(ValidationError):
        StepResult[Seen].model_validate({"observation": {"cells": "x"}})
    with pytest.raises(ValidationError):
        StepResult[Seen].model_validate({"observation": {"cells": []}, "done": True})


def test_env_info_defaults() -> None:
    info = EnvInfo(name="x")
    assert info.model_dump() == {"name": "x", "version": "0.1.0", "description": "", "readme_content": None,
                                 "author": None, "documentation_url": None}


@pytest.mark.parametrize(
    ("code", "cls"),
    [("VALIDATION_ERROR", InvalidAction), ("INVALID_JSON", InvalidFrame), ("UNKNOWN_TYPE", InvalidFrame),
     ("RESET_NEEDED", ResetNeeded), ("CAPACITY_REACHED", CapacityReached), ("RESUME_REJECTED", SessionError),
     ("SESSION_NOT_FOUND", SessionError), ("RATE_LIMITED", UsageError), ("SOMETHING_NEW", CorralError)],
)
def test_error_for_code(code: str, cls: type[CorralError]) -> None:
    err = error_for_code(code, "what happened", {"k": 1})
    assert type(err) is cls
    assert err.code == code
    assert err.message == "what happened"
    assert err.details == {"k": 1}
    assert str(err) == "what happened"


def test_error_details() -> None:
    assert InvalidAction("x", details={"errors": [{"loc": ["a"]}]}).errors == [{"loc": ["a"]}]
    assert InvalidAction("x").errors == []
    assert CapacityReached("x", details={"retry_after": "2"}).retry_after == 2.0
    assert CapacityReached("x").retry_after is None
    assert issubclass(TransportError, CorralError)
    assert not issubclass(TransportError, UsageError)


def test_error_classes_have_distinct_codes() -> None:
    def walk(cls: type[Any]) -> list[type[Any]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in walk(sub))]

    classes = [c for c in walk(CorralError) if c.__module__ == "corral.errors"]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
