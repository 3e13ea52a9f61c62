"""``check_env``: does an environment keep the Corral contract? Checked locally, with no server.

Like Gymnasium's ``env_checker``: the first problem found raises :class:`ConformanceError`, whose
message says what is wrong and how to fix the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from ..client._base import ClientCore
from ..environment import AnyEnvironment, AsyncEnvironment, EnvClass, Environment
from ..errors import UsageError
from ..protocol import Dialect, envelope
from ..tools import RESERVED_TOOL_NAMES
from ..types import Action, EnvInfo, Observation, State, StepResult
from .conformance import ConformanceError, first_difference

#: The episode id every checked reset is given; ``state.episode_id`` must echo it.
EPISODE_ID = "corral-check-env"

_SEED_FIX = (
    "derive every random choice from the seed given to reset (for example self._rng = random.Random(seed)) and "
    "reset every field of the episode there; or set seedable = False so that servers refuse seeds"
)


def check_env(
    env: AnyEnvironment | EnvClass,
    *,
    sample_action: Action | dict[str, Any] | None = None,
    seed: int = 0,
    steps: int = 3,
    reset_options: dict[str, Any] | None = None,
) -> None:
    """Check an environment class or instance; raise :class:`ConformanceError` at the first problem.

    Static: the class subclasses ``Environment`` or ``AsyncEnvironment`` (with matching ``def`` /
    ``async def`` methods) and implements them; ``action_type``, ``observation_type`` and ``state_type``
    are subclasses of ``Action``, ``Observation`` and ``State`` with JSON schemas; ``info`` is declared;
    ``state`` is a property; no tool takes a reserved name (``reset``, ``step``, ``state``, ``close``).

    Dynamic: a class is constructed with no arguments (as the server does); ``reset(seed=...,
    episode_id=...)`` and up to ``steps`` steps with ``sample_action`` return ``StepResult`` objects
    whose observation is an ``observation_type`` and survives the trip to the client as JSON; after
    each call ``state`` is a JSON-serialisable ``state_type`` with ``episode_id`` as given and
    ``step_count`` counting the steps; with ``seedable = True`` the same seed and actions give the same
    episode on the same instance and on a fresh one; ``close`` can be called twice.

    ``sample_action`` defaults to an action built from the field defaults (or the first of each
    field's ``examples``); without one, :class:`~corral.errors.UsageError` asks for it. An instance
    is closed by the check. Async environments are run with ``asyncio.run``; inside a running event
    loop, ``await acheck_env(...)`` instead.
    """
    checker = _Checker(env, sample_action, seed, steps, reset_options)
    if not checker.is_async:
        _drive(checker.run())
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(checker.run())
        return
    raise UsageError("check_env was called inside a running event loop with an async environment; "
                     "use `await acheck_env(env, ...)` instead")


async def acheck_env(
    env: AnyEnvironment | EnvClass,
    *,
    sample_action: Action | dict[str, Any] | None = None,
    seed: int = 0,
    steps: int = 3,
    reset_options: dict[str, Any] | None = None,
) -> None:
    """:func:`check_env` for async code: the same checks, awaited (blocking environments are called inline)."""
    await _Checker(env, sample_action, seed, steps, reset_options).run()


def _drive(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never suspends without an event loop.

    The checks of a blocking environment await nothing but plain calls, so they finish on the first
    ``send``; running them this way keeps the environment on the caller's thread, outside any loop.
    """
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("a check of a blocking environment suspended; this is a bug in corral.testing")


def _fail(check: str, problem: str, fix: str) -> ConformanceError:
    return ConformanceError(check, problem, fix)


class _Checker:
    def __init__(
        self,
        env: AnyEnvironment | EnvClass,
        sample_action: Action | dict[str, Any] | None,
        seed: int,
        steps: int,
        reset_options: dict[str, Any] | None,
    ) -> None:
        self.cls: Any = env if isinstance(env, type) else type(env)
        self.instance: AnyEnvironment | None = None if isinstance(env, type) else env
        self.is_async = isinstance(self.cls, type) and issubclass(self.cls, AsyncEnvironment)
        self.sample_action = sample_action
        self.seed = seed
        self.steps = steps
        self.reset_options = dict(reset_options or {})

    async def run(self) -> None:
        cls = _check_class(self.cls)
        action = _sample(cls, self.sample_action)
        wire_action = _wire_action(cls, action)
        created: list[AnyEnvironment] = []
        try:
            env = self.instance
            if env is None:
                env = _construct(cls)
                created.append(env)
            first = await self._episode(cls, env, wire_action)
            if cls.seedable:
                again = await self._episode(cls, env, wire_action)
                _same(cls, first, again, "the same instance, reset again with the same seed,")
                if self.instance is None:
                    other = _construct(cls)
                    created.append(other)
                    _same(cls, first, await self._episode(cls, other, wire_action), "a fresh instance")
            await self._call(env.close, "close", "close()", "close must release the instance's resources")
            await self._call(env.close, "close", "a second close()",
                             "make close idempotent: return at once when already closed (an instance may be closed "
                             "more than once)")
        finally:
            for instance in created:
                with contextlib.suppress(Exception):
                    await self._call(instance.close, "close", "close()", "")

    async def _call(self, fn: Callable[..., Any], check: str, what: str, fix: str, *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            return await result if self.is_async else result
        except Exception as exc:
            raise _fail(check, f"{what} raised {type(exc).__name__}: {exc}", fix) from exc

    async def _episode(self, cls: EnvClass, env: AnyEnvironment, action: Action) -> list[dict[str, Any]]:
        """Reset, then step up to ``steps`` times with ``action``; return what the client would have seen."""
        kwargs = {**self.reset_options, "episode_id": EPISODE_ID}
        if cls.seedable:
            kwargs["seed"] = self.seed
        fix = "reset(seed=None, episode_id=None, **options) must start a new episode and return a StepResult"
        result = await self._call(env.reset, "reset", "reset", fix, **kwargs)
        trajectory = [_check_result(cls, result, "reset")]
        if result.terminated or result.truncated:
            raise _fail("reset", "reset returned an episode that is already over (terminated or truncated)",
                        "reset must return the first observation of an episode that can be stepped")
        _check_state(cls, env, "reset", 0)
        for n in range(1, self.steps + 1):
            fix = ("step(action) must apply a valid action and return a StepResult; if the sample action makes "
                   "no sense for this environment, pass sample_action=...")
            result = await self._call(env.step, "step", f"step {n}", fix, action.model_copy(deep=True))
            trajectory.append(_check_result(cls, result, f"step {n}"))
            _check_state(cls, env, f"step {n}", n)
            if result.terminated or result.truncated:
                break
        return trajectory


# -- static checks -----------------------------------------------------------------------------------


def _check_class(cls: Any) -> EnvClass:
    if not (isinstance(cls, type) and issubclass(cls, (Environment, AsyncEnvironment))):
        raise _fail("class", f"{cls!r} is not an environment",
                    "subclass corral.Environment (blocking code) or corral.AsyncEnvironment (async def)")
    name = cls.__name__
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise _fail("class", f"{name} does not implement {missing}",
                    "define reset(seed=None, episode_id=None, **options), step(action) and the state property")
    for attr, base in (("action_type", Action), ("observation_type", Observation), ("state_type", State)):
        _check_type(cls, attr, base)
    info = getattr(cls, "info", None)
    if not isinstance(info, EnvInfo) or info is Environment.info:
        raise _fail("info", f"{name} does not declare info; /metadata and the corral/1 hello would name it "
                    "'environment'", 'set info = EnvInfo(name="my-env", version="0.1.0", description="...")')
    _check_kind(cls)
    if not isinstance(inspect.getattr_static(cls, "state", None), property):
        raise _fail("class", f"{name}.state is not a property", "declare state with @property; servers read env.state")
    _check_tools(cls)
    return cls


def _check_type(cls: EnvClass, attr: str, base: type[BaseModel]) -> None:
    name = cls.__name__
    declared = getattr(cls, attr, None)
    fix = f"set the class attribute {attr} to a subclass of corral.{base.__name__}"
    if declared is None:
        raise _fail("types", f"{name} does not declare {attr}", fix)
    if not (isinstance(declared, type) and issubclass(declared, base)):
        raise _fail("types", f"{name}.{attr} is {declared!r}, not a subclass of corral.{base.__name__}", fix)
    try:
        declared.model_json_schema()
    except Exception as exc:
        raise _fail("types", f"no JSON schema can be made for {name}.{attr} ({declared.__name__}): {exc}",
                    "use field types pydantic can describe; servers publish this schema at /schema") from exc


def _check_kind(cls: EnvClass) -> None:
    """A blocking environment defines plain methods; an async one, ``async def`` methods."""
    methods = ("reset", "step", "close")
    name = cls.__name__
    if issubclass(cls, AsyncEnvironment):
        plain = [m for m in methods if not inspect.iscoroutinefunction(getattr(cls, m))]
        if plain:
            raise _fail("class", f"{name} is an AsyncEnvironment but {', '.join(plain)} not async def",
                        "write them as async def, or subclass corral.Environment for blocking code")
    else:
        coros = [m for m in methods if inspect.iscoroutinefunction(getattr(cls, m))]
        if coros:
            raise _fail("class", f"{name} is a blocking Environment but {', '.join(coros)} async def",
                        "subclass corral.AsyncEnvironment for async code")


def _check_tools(cls: EnvClass) -> None:
    name = cls.__name__
    specs = cls.tool_specs()
    reserved = sorted(set(specs) & RESERVED_TOOL_NAMES)
    if reserved:
        raise _fail("tools", f"{name} exposes tools named {reserved}, which are reserved for episode control",
                    "rename those tools: an agent must never reset, step, read state or close through a tool")
    for spec in specs.values():
        if not callable(getattr(cls, spec.method, None)):
            raise _fail("tools", f"tool {spec.name!r} points at {name}.{spec.method}, which is not a method",
                        "mark environment methods with @corral.tool")
        try:
            spec.input_schema  # noqa: B018 - generating the schema is the check
        except Exception as exc:
            raise _fail("tools", f"no input schema can be made for tool {spec.name!r}: {exc}",
                        "annotate the tool's parameters with types pydantic can describe") from exc


# -- dynamic checks ----------------------------------------------------------------------------------


def _construct(cls: EnvClass) -> AnyEnvironment:
    try:
        return cls()
    except Exception as exc:
        raise _fail("construct", f"{cls.__name__}() raised {type(exc).__name__}: {exc}",
                    "servers create one instance per session with no arguments: give every __init__ "
                    "parameter a default") from exc


def _sample(cls: EnvClass, given: Action | dict[str, Any] | None) -> Action:
    action_type = cls.action_type
    if isinstance(given, dict):
        try:
            return action_type.model_validate(given)
        except ValidationError as exc:
            raise UsageError(f"sample_action is not a valid {action_type.__name__}: {exc}") from exc
    if given is not None:
        if not isinstance(given, action_type):
            raise UsageError(f"sample_action is a {type(given).__name__}, not a {action_type.__name__}")
        return given
    values: dict[str, Any] = {}
    missing = []
    for field_name, field in action_type.model_fields.items():
        if field.is_required():
            if field.examples:
                values[field_name] = field.examples[0]
            else:
                missing.append(field_name)
    if not missing:
        with contextlib.suppress(ValidationError):
            return action_type.model_validate(values)
    raise UsageError(
        f"cannot build a sample action for {cls.__name__}: {action_type.__name__} has required fields without "
        f"defaults or examples ({', '.join(missing) or 'examples do not validate'}); pass sample_action=... to "
        "check_env, or give those fields examples (Field(examples=[...]))"
    )


def _wire_action(cls: EnvClass, action: Action) -> Action:
    """The action as the environment receives it: dumped by the client, validated by the server."""
    fix = ("make every action field accept its own JSON form (plain str, int, float, bool, lists, dicts, "
           "nested models)")
    core: ClientCore[Any, Any] = ClientCore("ws://check-env", action_type=cls.action_type, observation_type=None,
                                            state_type=None, token=None, codec="json")
    try:
        data = orjson.loads(orjson.dumps(core.action_data(action)))
        received = cls.action_type.model_validate(data)
    except Exception as exc:
        raise _fail("action", f"the sample action does not survive the trip to the server: {exc}", fix) from exc
    diff = first_difference(action.model_dump(mode="json"), received.model_dump(mode="json"))
    if diff is not None:
        raise _fail("action", f"the sample action changes on the way to the server: {diff}", fix)
    return received


def _check_result(cls: EnvClass, result: Any, where: str) -> dict[str, Any]:
    """Check one reset/step result; return what a corral/1 client would receive."""
    call = where.split()[0]
    if not isinstance(result, StepResult):
        raise _fail(call, f"{where} returned {type(result).__name__}, not a StepResult",
                    "return StepResult(observation=..., reward=..., terminated=..., truncated=...)")
    obs_type = cls.observation_type
    observation = result.observation
    if not isinstance(observation, obs_type):
        raise _fail(call, f"{where} returned a {type(observation).__name__} observation, but observation_type "
                    f"is {obs_type.__name__}", f"return {obs_type.__name__}(...) from {call}, or declare the "
                    "observation_type the environment really returns")
    fix = ("use JSON-friendly fields in the observation and in info (str, int, float, bool, bytes, lists, dicts, "
           "nested models); convert other objects (sets, numpy arrays, custom classes) before returning them")
    try:
        data: dict[str, Any] = orjson.loads(orjson.dumps(envelope(result, Dialect.CORRAL)))
        received = obs_type.model_validate(data["observation"])
    except Exception as exc:
        raise _fail(call, f"the {where} result cannot travel to the client as JSON: {exc}", fix) from exc
    diff = first_difference(data["observation"], received.model_dump(mode="json"))
    if diff is not None:
        raise _fail(call, f"the {where} observation changes on the way to the client: {diff}", fix)
    data.pop("info", None)
    return data


def _check_state(cls: EnvClass, env: AnyEnvironment, where: str, steps: int) -> None:
    state_type = cls.state_type
    try:
        state = env.state
    except Exception as exc:
        raise _fail("state", f"reading state after {where} raised {type(exc).__name__}: {exc}",
                    "state must be a cheap property without side effects that works after reset") from exc
    if not isinstance(state, state_type):
        raise _fail("state", f"state after {where} is a {type(state).__name__}, not a {state_type.__name__}",
                    f"return a {state_type.__name__} from the state property, or declare the state_type it returns")
    try:
        state_type.model_validate(orjson.loads(orjson.dumps(state.model_dump(mode="json"))))
    except Exception as exc:
        raise _fail("state", f"state after {where} cannot be sent as JSON: {exc}",
                    "keep state fields JSON-friendly (str, int, float, bool, lists, dicts, nested models)") from exc
    if state.episode_id != EPISODE_ID:
        raise _fail("state", f"state.episode_id is {state.episode_id!r} after reset(episode_id={EPISODE_ID!r})",
                    "use the episode_id given to reset, and make one up only when it is None")
    if state.step_count != steps:
        raise _fail("state", f"state.step_count is {state.step_count} after {where}; expected {steps}",
                    "count the steps of the episode: step_count = 0 in reset, += 1 in every step")


def _same(cls: EnvClass, first: list[dict[str, Any]], second: list[dict[str, Any]], how: str) -> None:
    diff = first_difference(first, second)
    if diff is not None:
        raise _fail("seed", f"{cls.__name__} is seedable, but {how} gave a different episode for the same actions "
                    f"(entry 0 is the reset, entry n step n): {diff}", _SEED_FIX)
