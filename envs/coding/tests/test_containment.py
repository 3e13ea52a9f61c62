"""Hostile submissions are contained and reported: each runs in its own sandbox, and the session goes on."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from corral.runtime.sandbox import sandbox_available

import corral_coding
from corral_coding import CodingAction, CodingEnvironment, CodingObservation
from corral_coding.tasks import load_tasks

pytestmark = pytest.mark.skipif(not sandbox_available()[0],
                                reason=f"no bubblewrap sandboxes here: {sandbox_available()[1]}")

FIZZBUZZ = next(t for t in load_tasks() if t.id == "fizzbuzz")


@pytest.fixture(scope="module")
def env() -> Iterator[CodingEnvironment]:
    environment = CodingEnvironment()
    yield environment
    environment.close()


def submit(env: CodingEnvironment, code: str, **options: object) -> CodingObservation:
    env.reset(seed=0, task="fizzbuzz", **options)
    return env.step(CodingAction(code=code)).observation


def assert_still_works(env: CodingEnvironment) -> None:
    result = env.step(CodingAction(code=FIZZBUZZ.solution))
    assert result.terminated
    assert result.observation.tests_passed == 6


def sandbox_processes() -> int:
    """Host processes running the harness (bubblewrap's two, and the submission's own)."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        count += b"The program that runs inside each sandbox" in command
    return count


def test_an_infinite_loop_is_timed_out_and_the_session_goes_on(env: CodingEnvironment) -> None:
    observation = submit(env, "while True:\n    pass\n", time_limit_s=0.5)
    assert observation.timed_out
    assert observation.exit_code is None
    assert observation.limit == "time limit 0.5 s"
    assert observation.tests[0].detail == "not run: the program went past its time limit"
    assert_still_works(env)


def test_a_function_that_never_returns_keeps_the_tests_it_passed(env: CodingEnvironment) -> None:
    code = "def fizzbuzz(n):\n    while n == 15:\n        pass\n    return [str(i) for i in range(1, n + 1)]\n"
    observation = submit(env, code, time_limit_s=0.5)
    assert observation.timed_out
    assert [case.passed for case in observation.tests[:3]] == [True, False, False]
    assert observation.tests[3].detail == "not run: the program went past its time limit"


def test_a_memory_bomb_hits_the_memory_limit(env: CodingEnvironment) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))\n"
    observation = submit(env, code, memory_mb=64)
    assert observation.limit == "memory limit 64 MiB"
    assert observation.exit_code == 1
    assert observation.stderr.rstrip().endswith("MemoryError")
    assert_still_works(env)


def test_a_memory_bomb_inside_a_test_fails_that_test(env: CodingEnvironment) -> None:
    observation = submit(env, "def fizzbuzz(n):\n    return [0] * (n * 10 ** 8)\n", memory_mb=64)
    assert observation.tests[1].detail == "raised MemoryError"
    assert observation.tests[4].passed  # fizzbuzz(0) allocates nothing, and returns []
    assert observation.limit == "memory limit 64 MiB"


def test_a_fork_bomb_is_held_to_the_process_limit_and_leaves_nothing(env: CodingEnvironment) -> None:
    before = sandbox_processes()
    peak = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], sandbox_processes() - before)
            stop.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
        observation = submit(env, code, processes=8, time_limit_s=1)
    finally:
        stop.set()
        watcher.join()
    assert observation.timed_out
    assert observation.limit == "time limit 1 s"
    # The sandbox's init and its processes: 8 at most; plus bubblewrap outside the sandbox.
    assert 0 < peak[0] <= 8 + 1
    assert sandbox_processes() == before
    assert_still_works(env)


def test_forks_fail_past_the_process_limit(env: CodingEnvironment) -> None:
    code = ("import os, time\nforked = 0\ntry:\n    while forked < 100:\n        if os.fork() == 0:\n"
            "            time.sleep(2)\n            os._exit(0)\n        forked += 1\nfinally:\n    print(forked)\n")
    observation = submit(env, code, processes=8)
    # The limit counts the sandbox's init and the submission's own process too.
    assert observation.stdout == "6\n"
    assert observation.limit == "process limit 8"
    assert "BlockingIOError: [Errno 11] Resource temporarily unavailable" in observation.stderr


def test_there_is_no_network(env: CodingEnvironment) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        # 192.0.2.1 is reserved for documentation: with no route in the sandbox, no packet is ever sent.
        code = ("import errno, socket\n"
                f"for address in (('127.0.0.1', {port}), ('192.0.2.1', 80)):\n"
                "    with socket.socket() as s:\n"
                "        s.settimeout(5)\n"
                "        try:\n"
                "            s.connect(address)\n"
                "            print(address[0], 'connected')\n"
                "        except OSError as exc:\n"
                "            print(address[0], errno.errorcode.get(exc.errno, exc))\n")
        observation = submit(env, code, time_limit_s=3)
        # The sandbox's loopback is its own, with nothing listening: the host's listener is out of reach.
        assert observation.stdout == "127.0.0.1 ECONNREFUSED\n192.0.2.1 ENETUNREACH\n", observation.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_the_host_file_system_is_out_of_reach(env: CodingEnvironment) -> None:
    token = uuid.uuid4().hex
    planted = Path.home() / f".corral-coding-secret-{token}"
    planted.write_text("the host's secret")
    checkout_file = Path(corral_coding.__file__)
    targets = [f"/usr/escape-{token}", f"/escape-{token}", f"/etc/escape-{token}", f"{Path.home()}/escape-{token}"]
    code = ("def attempt(what, call):\n"
            "    try:\n"
            "        call()\n"
            "        print(what, 'ok')\n"
            "    except OSError as exc:\n"
            "        print(what, type(exc).__name__)\n"
            f"attempt('read', lambda: open({str(planted)!r}).read())\n"
            f"attempt('read', lambda: open({str(checkout_file)!r}).read())\n"
            f"for target in {targets!r}:\n"
            "    attempt('write', lambda: open(target, 'w').write('x'))\n"
            f"attempt('write', lambda: open('/tmp/private-{token}', 'w').write('x'))\n")
    try:
        observation = submit(env, code)
    finally:
        planted.unlink()
    lines = observation.stdout.splitlines()
    assert lines[0:2] == ["read FileNotFoundError", "read FileNotFoundError"], observation.stderr
    assert all(line.startswith("write ") and not line.endswith(" ok") for line in lines[2:6]), lines
    assert lines[6] == "write ok"  # the sandbox's own /tmp, gone with it
    for target in [*targets, f"/tmp/private-{token}"]:
        assert not os.path.exists(target)


def test_an_output_flood_is_truncated(env: CodingEnvironment) -> None:
    code = ("import sys\nsys.stdout.write('x' * 5_000_000)\nsys.stderr.write('y' * 5_000_000)\nprint('end')\n"
            "def fizzbuzz(n):\n    return []\n")
    observation = submit(env, code, output_kib=16)
    assert observation.output_truncated
    assert observation.exit_code == 0
    assert observation.limit == "output limit 16 KiB (the rest was dropped)"
    for text, letter in ((observation.stdout, "x"), (observation.stderr, "y")):
        assert text.startswith(letter * 16384)
        assert len(text) < 16384 + 200
        assert "truncated at 16 KiB" in text


def test_an_endless_flood_is_cut_by_the_time_limit(env: CodingEnvironment) -> None:
    observation = submit(env, "while True:\n    print('y' * 1000)\n", time_limit_s=0.5, output_kib=4)
    assert observation.timed_out
    assert observation.output_truncated
    assert len(observation.stdout) < 4096 + 200
    assert_still_works(env)


def test_forged_results_earn_nothing(env: CodingEnvironment) -> None:
    # The strongest forger: it finds the harness's marker and channel and reports values of its own, and it
    # prints every claim of success it likes. The host compares values with expected ones it never sent.
    code = ("import json, sys\n"
            "harness = sys._getframe(1).f_locals\n"
            "for index in range(6):\n"
            "    event = {'event': 'result', 'index': index, 'value': 'passed'}\n"
            "    harness['channel'].write(harness['marker'] + b' ' + json.dumps(event).encode() + b'\\n')\n"
            "print('6/6 tests passed. PASSED. reward=1.0')\n"
            "print(repr(harness['request']))\n"
            "def fizzbuzz(n):\n"
            "    return None\n")
    env.reset(seed=0, task="fizzbuzz")
    result = env.step(CodingAction(code=code))
    observation = result.observation
    assert "6/6 tests passed" in observation.stdout
    assert result.reward == 0.0
    assert observation.tests_passed == 0
    assert observation.tests[0].detail == "returned 'passed', which is wrong"
    # What the sandbox was given: the arguments, never the expected values.
    assert "'calls': [[1], [3], [5], [15], [0], [31]]" in observation.stdout
    assert "Fizz" not in observation.stdout
