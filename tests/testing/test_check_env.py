from __future__ import annotations

import random
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from corral import Action, EnvInfo, Environment, Observation, State, StepResult
from corral.envs.echo import EchoEnvironment
from corral.envs.guess import GuessEnvironment
from corral.errors import UsageError
from corral.testing import ConformanceError, acheck_env, check_env
from corral.tools import ToolSpec

from .envs import AsyncFlipEnv, FlipAction, FlipEnv, FlipObservation, SlowEnv


def fails(env: Any, check: str, *phrases: str, **kwargs: Any) -> ConformanceError:
    """Assert that check_env fails ``check`` with a message naming each phrase and a fix."""
    with pytest.raises(ConformanceError) as info:
        check_env(env, **kwargs)
    error = info.value
    assert error.check == check, str(error)
    assert "fix:" in str(error)
    assert error.fix
    for phrase in phrases:
        assert phrase in str(error)
    return error


# -- environments that keep the contract ----------------------------------------------------------


def test_builtin_environments_pass() -> None:
    check_env(EchoEnvironment, sample_action={"message": "hi"})
    check_env(GuessEnvironment, sample_action={"guess": 50}, seed=1, steps=5)
    check_env(GuessEnvironment(), sample_action={"guess": 10}, reset_options={"high": 20})


def test_a_sample_action_is_built_from_defaults() -> None:
    check_env(FlipEnv)


def test_a_sample_action_is_built_from_field_examples() -> None:
    class PickAction(Action):
        index: int = Field(examples=[2])

    class PickEnv(FlipEnv):
        action_type = PickAction

        def step(self, action: Any) -> StepResult[Any]:
            return super().step(FlipAction())

    check_env(PickEnv)


def test_an_instance_is_checked_and_closed() -> None:
    FlipEnv.closed = 0
    check_env(FlipEnv())
    assert FlipEnv.closed == 1


def test_async_environments_pass_from_blocking_code() -> None:
    check_env(AsyncFlipEnv)
    check_env(SlowEnv)


async def test_acheck_env_in_async_code() -> None:
    await acheck_env(AsyncFlipEnv, steps=2)
    await acheck_env(FlipEnv)
    with pytest.raises(UsageError, match="acheck_env"):
        check_env(AsyncFlipEnv)


def test_a_nondeterministic_environment_may_refuse_seeds() -> None:
    class Unseeded(FlipEnv):
        seedable = False

        def _seed(self, seed: int | None) -> random.Random:
            return random.Random()

    check_env(Unseeded, steps=20)


def test_a_missing_or_bad_sample_action_is_the_callers_mistake() -> None:
    with pytest.raises(UsageError, match=r"\(message\); pass sample_action="):
        check_env(EchoEnvironment)
    with pytest.raises(UsageError, match="not a valid EchoAction"):
        check_env(EchoEnvironment, sample_action={"text": "hi"})
    with pytest.raises(UsageError, match="not a EchoAction"):
        check_env(EchoEnvironment, sample_action=FlipAction())


# -- environments that break it ---------------------------------------------------------------------


def test_unseeded_randomness_is_caught() -> None:
    class Unseeded(FlipEnv):
        def _seed(self, seed: int | None) -> random.Random:
            return random.Random()

    fails(Unseeded, "seed", "seedable", "random.Random(seed)", "seedable = False", steps=20)


def test_randomness_that_leaks_across_episodes_is_caught() -> None:
    class SeededOnce(FlipEnv):
        def __init__(self) -> None:
            super().__init__()
            self._once = random.Random(0)

        def _seed(self, seed: int | None) -> random.Random:
            return self._once

    fails(SeededOnce, "seed", "the same instance", steps=20)


def test_wrong_observation_type() -> None:
    class Other(Observation):
        value: int = 0

    class Wrong(FlipEnv):
        def step(self, action: Any) -> StepResult[Any]:
            super().step(action)
            return StepResult(observation=Other())

    fails(Wrong, "step", "Other observation", "observation_type is FlipObservation")


def test_close_that_is_not_idempotent() -> None:
    class Fragile(FlipEnv):
        def close(self) -> None:
            if self._closed:
                raise RuntimeError("already closed")
            self._closed = True

    fails(Fragile, "close", "second close()", "already closed", "idempotent")


def test_reserved_tool_names() -> None:
    class Args(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class Sneaky(FlipEnv):
        @classmethod
        def tool_specs(cls) -> dict[str, ToolSpec]:
            return {"reset": ToolSpec("reset", "start over", Args, "reset")}

    fails(Sneaky, "tools", "['reset']", "reserved", "rename")


def test_types_must_derive_from_the_corral_bases() -> None:
    class Plain(BaseModel):
        call: str = "heads"

    class PlainAction(FlipEnv):
        action_type = Plain  # type: ignore[assignment]

    fails(PlainAction, "types", "action_type", "corral.Action")

    class NoObservationType(Environment[Any, Any, Any]):
        action_type = FlipAction
        info = EnvInfo(name="x")
        reset = FlipEnv.reset
        step = FlipEnv.step
        state = FlipEnv.state

    fails(NoObservationType, "types", "does not declare observation_type")


def test_info_must_be_declared() -> None:
    class Anonymous(FlipEnv):
        info = Environment.info

    fails(Anonymous, "info", "EnvInfo(name=")


def test_not_an_environment_or_abstract() -> None:
    fails(object, "class", "corral.Environment")

    class Half(Environment[Any, Any, Any]):
        action_type = FlipAction
        observation_type = FlipObservation

        def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
            raise NotImplementedError

    fails(Half, "class", "does not implement state, step")


def test_async_def_in_a_blocking_environment() -> None:
    class Confused(FlipEnv):
        async def step(self, action: Any) -> StepResult[Any]:  # type: ignore[override]
            return FlipEnv.step(self, action)

    fails(Confused, "class", "step async def", "AsyncEnvironment")


def test_state_must_be_a_property() -> None:
    class Method(FlipEnv):
        def state(self) -> State:  # type: ignore[override]
            return State()

    fails(Method, "class", "not a property", "@property")


def test_constructor_needs_no_arguments() -> None:
    class Needy(FlipEnv):
        def __init__(self, size: int) -> None:
            super().__init__()

    fails(Needy, "construct", "Needy()", "default")


def test_reset_must_return_a_step_result() -> None:
    class Dict(FlipEnv):
        def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> Any:
            super().reset(seed, episode_id)
            return {"observation": {}}

    fails(Dict, "reset", "returned dict, not a StepResult", "StepResult(observation=")


def test_reset_must_not_end_the_episode() -> None:
    class Over(FlipEnv):
        def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
            super().reset(seed, episode_id)
            return StepResult(observation=FlipObservation(), terminated=True)

    fails(Over, "reset", "already over")


def test_exceptions_in_the_environment_are_reported_with_their_call() -> None:
    class Crashy(FlipEnv):
        def step(self, action: Any) -> StepResult[Any]:
            raise KeyError("missing piece")

    fails(Crashy, "step", "step 1 raised KeyError", "sample_action")


def test_observations_must_travel_as_json() -> None:
    class Opaque:
        pass

    class Blobby(FlipEnv):
        def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
            result = super().reset(seed, episode_id)
            return StepResult(observation=result.observation, info={"handle": Opaque()})

    fails(Blobby, "reset", "cannot travel to the client as JSON", "convert other objects")


def test_state_must_be_the_declared_type_and_json() -> None:
    class Richer(State):
        level: int = 0

    class WrongState(FlipEnv):
        state_type = Richer

    fails(WrongState, "state", "not a Richer")

    class Unsendable(FlipEnv):
        @property
        def state(self) -> State:
            return State(episode_id="corral-check-env", handle=object())

    fails(Unsendable, "state", "cannot be sent as JSON")


def test_state_bookkeeping() -> None:
    class Uncounted(FlipEnv):
        def step(self, action: Any) -> StepResult[Any]:
            result = super().step(action)
            self._state.step_count = 0
            return result

    fails(Uncounted, "state", "step_count is 0 after step 1", "+= 1")

    class Forgetful(FlipEnv):
        def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
            return super().reset(seed, None)

    fails(Forgetful, "state", "episode_id is 'flip'", "episode_id given to reset")


def test_actions_must_survive_the_wire() -> None:
    class Shouting(Action):
        word: str = "hey"

        @field_validator("word")
        @classmethod
        def louder(cls, value: str) -> str:
            return value + "!"

    class Loud(FlipEnv):
        action_type = Shouting

        def step(self, action: Any) -> StepResult[Any]:
            return super().step(FlipAction())

    fails(Loud, "action", "changes on the way to the server", "word: 'yo!' != 'yo!!'", sample_action={"word": "yo"})


def test_play_locally_reproduces_and_bounds_an_episode() -> None:
    from corral.envs.guess import GuessEnvironment, random_policy, scripted_policy
    from corral.testing import play_locally

    total, trace = play_locally(GuessEnvironment(), scripted_policy, seed=3)
    assert total > 0
    assert trace[-1]["hint"] == "correct"
    assert play_locally(GuessEnvironment(), random_policy, seed=9) == play_locally(
        GuessEnvironment(), random_policy, seed=9)
    with pytest.raises(UsageError, match="still running after 2 steps; raise step_limit"):
        play_locally(GuessEnvironment(), lambda obs, rng: {"guess": 0}, seed=1, step_limit=2, max_attempts=50)
