from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
import uvicorn

from corral import ServerConfig, State, StepResult
from corral.environment import EnvClass
from corral.envs.echo import EchoEnvironment
from corral.envs.guess import GuessEnvironment
from corral.server import create_app, uvicorn_config
from corral.testing import ConformanceError, Outcome, check_server

from .envs import FlipEnv, FlipObservation, SlowEnv

CHECKS = [
    "health", "metadata", "schema", "auth", "episode", "seed", "isolation", "error:INVALID_JSON",
    "error:UNKNOWN_TYPE", "error:VALIDATION_ERROR", "error:RESET_NEEDED", "resume",
]


@contextmanager
def serving(env_cls: EnvClass, config: ServerConfig | None = None) -> Iterator[str]:
    """A real uvicorn server for ``env_cls`` on 127.0.0.1 and an ephemeral port, in a thread; yields its URL."""
    config = config or ServerConfig()
    server = uvicorn.Server(uvicorn_config(create_app(env_cls, config), port=0, config=config))
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def outcomes(report: Any) -> dict[str, str]:
    return {name: outcome for name, outcome, _ in report.rows()}


def test_echo_server_passes() -> None:
    with serving(EchoEnvironment) as url:
        report = check_server(url, sample_action={"message": "hi"})
    assert report.ok, str(report)
    assert [check.name for check in report.checks] == CHECKS
    assert outcomes(report) == {name: "skip" if name == "auth" else "pass" for name in CHECKS}
    assert report["resume"].message == "the episode went on after the link dropped; a wrong resume token was refused"
    assert str(report).startswith(f"{url}: ok")
    report.raise_for_failures()


def test_guess_server_with_a_token_passes() -> None:
    with serving(GuessEnvironment, ServerConfig(token="s3cret")) as url:
        report = check_server(f"{url}/ws", sample_action={"guess": 50}, token="s3cret", seed=1)
        anonymous = check_server(url, sample_action={"guess": 50})
    assert report.ok, str(report)
    assert report["auth"].outcome is Outcome.PASSED
    assert report["seed"].message.startswith("two sessions with seed 1 saw the same")
    assert not anonymous.ok
    assert "pass token=... to check_server" in anonymous["metadata"].message
    with pytest.raises(ConformanceError, match="failed 10 of 12 checks"):
        anonymous.raise_for_failures()


def test_seeds_are_skipped_when_the_environment_refuses_them() -> None:
    with serving(SlowEnv) as url:
        report = check_server(url, sample_action={})
    assert report.ok, str(report)
    assert report["seed"].outcome is Outcome.SKIPPED
    assert "seedable = False" in report["seed"].message


def test_a_one_session_server_is_checked_without_the_isolation_check() -> None:
    with serving(EchoEnvironment, ServerConfig(capacity=1)) as url:
        report = check_server(url, sample_action={"message": "hi"}, timeout=5)
    assert report.ok, str(report)
    assert report["isolation"].outcome is Outcome.SKIPPED


def test_an_unseeded_environment_fails_the_seed_check() -> None:
    class Unseeded(FlipEnv):
        def _seed(self, seed: int | None) -> random.Random:
            return random.Random()

    with serving(Unseeded) as url:
        report = check_server(url, sample_action={}, steps=20)
    assert outcomes(report)["seed"] == "fail"
    assert "seed 0 and the same actions differ" in report["seed"].message
    assert "fix:" in report["seed"].message
    assert [check.name for check in report.failures] == ["seed"]


def test_shared_episode_state_fails_the_isolation_check() -> None:
    class Shared(FlipEnv):
        shared: ClassVar[State] = State()

        def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
            super().reset(seed, episode_id)
            Shared.shared.step_count = 0
            return StepResult(observation=FlipObservation())

        def step(self, action: Any) -> StepResult[Any]:
            Shared.shared.step_count += 1
            return StepResult(observation=FlipObservation())

        @property
        def state(self) -> State:
            return Shared.shared

    with serving(Shared) as url:
        report = check_server(url, sample_action={})
    assert report["isolation"].outcome is Outcome.FAILED
    assert "not (1, 0)" in report["isolation"].message


def test_an_unreachable_server_fails_health_and_skips_the_rest() -> None:
    with serving(EchoEnvironment) as url:
        pass
    report = check_server(url, sample_action={"message": "hi"}, timeout=2)
    assert report["health"].outcome is Outcome.FAILED
    assert "cannot talk to the server" in report["health"].message
    assert {check.outcome for check in report.checks[1:]} == {Outcome.SKIPPED}
    with pytest.raises(ConformanceError, match="- health: cannot talk to the server"):
        report.raise_for_failures()


def test_observations_are_matched_against_the_served_schema() -> None:
    pytest.importorskip("jsonschema")

    class Extra(FlipObservation):
        surprise: int = 1

    class Liar(FlipEnv):
        def step(self, action: Any) -> StepResult[Any]:
            super().step(action)
            return StepResult(observation=Extra())

    with serving(EchoEnvironment) as url:
        good = check_server(url, sample_action={"message": "hi"})
    assert "observation matches /schema" in good["episode"].message
    assert "sample action matches /schema" in good["schema"].message
    with serving(Liar) as url:
        bad = check_server(url, sample_action={})
    assert bad["episode"].outcome is Outcome.FAILED
    assert "does not match the schema served at /schema" in bad["episode"].message


class TaskEcho(EchoEnvironment):
    """An echo whose reset needs a task name, as environments with several tasks do."""

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        if options.get("task") != "copy":
            raise ValueError(f"reset needs task='copy', got options {options}")
        return super().reset(seed=seed, episode_id=episode_id)


def test_every_reset_of_the_checks_carries_the_reset_options() -> None:
    with serving(TaskEcho) as url:
        report = check_server(url, sample_action={"message": "hi"}, reset_options={"task": "copy"})
        without = check_server(url, sample_action={"message": "hi"})
    assert report.ok, str(report)
    assert outcomes(report) == {name: "skip" if name == "auth" else "pass" for name in CHECKS}
    assert outcomes(without)["episode"] == "fail"
