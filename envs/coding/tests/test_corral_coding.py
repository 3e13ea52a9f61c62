"""coding's tests: conformance, reproducible seeds, the scripted policy solves every task, rewards can only
be earned by passing tests, and a real client session."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from corral.runtime.sandbox import sandbox_available
from corral.testing import InProcessClient, check_env

from corral_coding import CodingAction, CodingEnvironment, CodingObservation
from corral_coding.policies import scripted
from corral_coding.tasks import load_tasks, same

pytestmark = pytest.mark.skipif(not sandbox_available()[0],
                                reason=f"no bubblewrap sandboxes here: {sandbox_available()[1]}")


@pytest.fixture(scope="module")
def env() -> Iterator[CodingEnvironment]:
    environment = CodingEnvironment()
    yield environment
    environment.close()

WRONG_FIZZBUZZ = "def fizzbuzz(n):\n    return [str(i) for i in range(1, n + 1)]\n"
# Prints in a set's order, which follows the string hash seed: reproducible only if the seed fixes it.
SET_ORDER = "print(list({'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'}))\n"


def play(env: CodingEnvironment, seed: int, codes: list[str]) -> list[dict[str, Any]]:
    result = env.reset(seed=seed)
    trace = [result.model_dump()]
    for code in codes:
        if result.done:
            break
        result = env.step(CodingAction(code=code))
        trace.append(result.model_dump())
    return trace


def test_conformance() -> None:
    check_env(CodingEnvironment, sample_action=CodingAction(code="print('hello')"))


def test_same_seed_same_episode(env: CodingEnvironment) -> None:
    codes = [SET_ORDER + WRONG_FIZZBUZZ, "import random\nprint(random.random())\nraise SystemExit(2)\n"]
    first = play(env, 12, codes)
    assert first == play(env, 12, codes)
    assert first[0]["observation"]["task_id"] == "fizzbuzz"
    assert first[1]["observation"]["tests_passed"] == 2


def test_the_seed_picks_the_task_and_the_task_option_overrides_it(env: CodingEnvironment) -> None:
    tasks = load_tasks()
    assert len(tasks) >= 10
    assert [env.reset(seed=seed).observation.task_id for seed in range(len(tasks))] == [t.id for t in tasks]
    assert env.reset(seed=0, task="primes").observation.task_id == "primes"
    with pytest.raises(ValueError, match="no task 'nope'"):
        env.reset(task="nope")


@pytest.mark.parametrize("task", [t.id for t in load_tasks()])
def test_the_scripted_policy_solves_every_task_at_once(env: CodingEnvironment, task: str) -> None:
    result = env.reset(seed=0, task=task)
    result = env.step(scripted(result.observation, random.Random(0)))
    observation = result.observation
    assert (result.reward, result.terminated) == (1.0, True), observation
    assert observation.tests_passed == observation.tests_total > 0
    assert all(case.passed for case in observation.tests)


def test_reward_is_the_gain_over_the_best_submission(env: CodingEnvironment) -> None:
    env.reset(seed=0, task="fizzbuzz", max_attempts=4)
    partial = env.step(CodingAction(code=WRONG_FIZZBUZZ))
    assert partial.reward == pytest.approx(2 / 6)
    assert not partial.done
    assert [case.passed for case in partial.observation.tests] == [True, False, False, False, True, False]
    assert "returned ['1', '2', '3'], which is wrong" in partial.observation.tests[1].detail
    assert "expected" not in partial.observation.tests[1].detail
    again = env.step(CodingAction(code=WRONG_FIZZBUZZ))
    assert again.reward == 0.0
    assert again.observation.best_passed == 2
    solved = env.step(CodingAction(code=load_tasks()[0].solution))
    assert solved.reward == pytest.approx(4 / 6)
    assert solved.terminated
    assert env.state.solved
    assert env.state.attempts == 3


def test_truncated_after_max_attempts(env: CodingEnvironment) -> None:
    env.reset(seed=0, max_attempts=2)
    assert not env.step(CodingAction(code="pass")).done
    result = env.step(CodingAction(code="pass"))
    assert result.truncated
    assert not result.terminated
    assert result.observation.attempts_left == 0
    assert result.observation.tests[0].detail == "not run: there is no function 'fizzbuzz'; define " \
                                                 "`def fizzbuzz(n: int) -> list[str]`"


def test_reveal_expected_says_what_a_test_wanted(env: CodingEnvironment) -> None:
    env.reset(task="fizzbuzz", reveal_expected=True)
    detail = env.step(CodingAction(code=WRONG_FIZZBUZZ)).observation.tests[1].detail
    assert detail.endswith("expected ['1', '2', 'Fizz']")


def test_a_program_task_is_judged_by_its_output(env: CodingEnvironment) -> None:
    env.reset(task="fibonacci-print")
    wrong = env.step(CodingAction(code="for i in range(20):\n    print(i)\n"))
    assert wrong.observation.tests[0].detail == "the output differs from the expected output at line 3"
    assert wrong.reward == 0.0
    crashed = env.step(CodingAction(code="print(0)\nprint(1)\nraise SystemExit(1)\n"))
    assert not crashed.observation.tests[0].passed
    assert crashed.observation.exit_code == 1


def test_bad_reset_options_are_refused_with_the_allowed_range(env: CodingEnvironment) -> None:
    with pytest.raises(ValueError, match="time_limit_s: Input should be less than or equal to 30"):
        env.reset(time_limit_s=3600)
    with pytest.raises(ValueError, match="memroy_mb: Extra inputs are not permitted"):
        env.reset(memroy_mb=64)


def test_values_compare_strictly_by_type() -> None:
    assert same([1, 2.0000000001], [1, 2.0])
    assert not same(1, True)
    assert not same(True, 1)
    assert not same("1", 1)
    assert not same([1], [1, 2])
    assert not same({"a": 1}, {"a": 1, "b": 2})
    assert same(None, None)
    assert not same(None, [])


def test_close_kills_a_run_in_progress() -> None:
    env = CodingEnvironment()
    env.reset(task="fizzbuzz", time_limit_s=30)
    done: list[CodingObservation] = []
    worker = threading.Thread(target=lambda: done.append(env.step(CodingAction(code="while True: pass")).observation))
    worker.start()
    # The run is under way once the executor holds its process.
    while env._executor._process is None and worker.is_alive():
        threading.Event().wait(0.01)
    env.close()
    worker.join(10)
    assert not worker.is_alive()
    assert done
    assert done[0].exit_code == -9
    assert not done[0].timed_out
    assert done[0].limit == "closed"
    with pytest.raises(Exception, match="closed"):
        env.step(CodingAction(code="pass"))
    env.close()


def test_refuses_without_bubblewrap_rather_than_run_code_unsandboxed(tmp_path: Any) -> None:
    program = ("from corral_coding import CodingEnvironment\n"
               "try:\n    CodingEnvironment()\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n")
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": str(tmp_path)}, check=False)
    assert run.stdout.startswith("RuntimeUnavailable the coding environment runs every submission in a "
                                 "bubblewrap sandbox"), run.stdout + run.stderr
    assert "refuses to run code without one" in run.stdout


def test_a_session_through_the_server() -> None:
    with InProcessClient(CodingEnvironment, observation_type=CodingObservation) as client:
        result = client.reset(seed=3)
        assert result.observation.task_id == "roman"
        assert result.observation.tests_total == 8
        result = client.step(CodingAction(code=scripted(result.observation, random.Random(0)).code))
        assert result.reward == 1.0
        assert result.terminated
        assert client.state().step_count == 1
