"""The bubblewrap tier, for real: isolation, limits, kills, failed starts and owner death leave nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.errors import ConnectionLost, EnvironmentFailed, RuntimeFailed
from corral.runtime import Limits, Server
from corral.runtime.sandbox import SandboxRuntime, SandboxServer, sandbox_available

from .conftest import processes_with
from .hostile_env import HostileAction, HostileObservation

HOSTILE = "tests.runtime.hostile_env:HostileEnv"

available, why = sandbox_available()
pytestmark = pytest.mark.skipif(not available, reason=f"this machine cannot run bubblewrap sandboxes: {why}")


@pytest.fixture(scope="module")
def runtime() -> SandboxRuntime:
    return SandboxRuntime()


@pytest.fixture(scope="module")
def bystander(runtime: SandboxRuntime) -> Iterator[Server]:
    """Another sandboxed server, which must keep serving whatever the hostile one does."""
    with runtime.start("echo") as server:
        yield server


@pytest.fixture
def hostile(runtime: SandboxRuntime) -> Iterator[SandboxServer]:
    server = runtime.start(HOSTILE, limits=Limits(cpu_s=3, memory_mb=512, processes=32, open_files=256))
    assert isinstance(server, SandboxServer)
    try:
        yield server
    finally:
        server.stop()
    assert_left_nothing(server)


def attempt(server: Server, attempt: str, target: str = "", amount: int = 0) -> HostileObservation:
    with server.client(action_type=HostileAction, observation_type=HostileObservation) as env:
        env.reset()
        result = env.step(HostileAction(attempt=attempt, target=target, amount=amount))
    observation = result.observation
    assert isinstance(observation, HostileObservation)
    return observation


def assert_serving(server: Server) -> None:
    with server.client() as env:
        env.reset()
        assert env.step({"message": "still here"}).observation.model_dump()["echoed_message"] == "still here"


def assert_left_nothing(server: SandboxServer) -> None:
    assert not server.alive()
    assert not server.folder.exists(), "the server's folder outlived its stop"
    assert not processes_with(server.folder.name), "a process of the sandbox outlived its stop"
    if server.cgroup is not None:
        assert not any(d.exists() for d in server.cgroup.dirs), "the sandbox's cgroup outlived its stop"


def test_serves_echo_over_its_socket(bystander: Server) -> None:
    assert bystander.url.startswith("unix:///")
    assert_serving(bystander)


def test_no_network_not_even_the_hosts_loopback(hostile: SandboxServer, bystander: Server) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    with listener:
        inside = attempt(hostile, "connect", f"127.0.0.1:{port}")
        assert not inside.escaped, inside.detail
        with pytest.raises(TimeoutError):
            listener.accept()
    outside = attempt(hostile, "connect", "192.0.2.1:80")  # TEST-NET-1: documentation only, never routed
    assert not outside.escaped, outside.detail
    assert "unreachable" in outside.detail.lower() or "refused" in outside.detail.lower()
    assert_serving(bystander)


@pytest.mark.parametrize("target", ["/etc/corral-escape", "/usr/corral-escape", "/corral-escape",
                                    f"{Path(__file__).parent}/corral-escape"])
def test_cannot_write_outside_its_tmp(hostile: SandboxServer, target: str) -> None:
    observation = attempt(hostile, "write", target)
    assert not observation.escaped, observation.detail
    assert not Path(target).exists()
    assert attempt(hostile, "write", "/tmp/mine").escaped  # its own tmp is writable


def test_hostname_is_its_own(hostile: SandboxServer) -> None:
    host = socket.gethostname()
    attempt(hostile, "write", "/proc/sys/kernel/hostname")  # allowed: its own UTS namespace
    assert socket.gethostname() == host


def test_cannot_read_the_hosts_home(hostile: SandboxServer, home_secret: Path) -> None:
    observation = attempt(hostile, "read", str(home_secret))
    assert not observation.escaped, observation.detail


def test_memory_past_the_limit_is_an_error_not_a_crash(hostile: SandboxServer, bystander: Server) -> None:
    with pytest.raises(EnvironmentFailed, match="MemoryError"):
        attempt(hostile, "allocate", amount=2048)
    assert attempt(hostile, "echo", "alive").detail == "alive"
    assert_serving(bystander)


def test_unbounded_fork_is_stopped(hostile: SandboxServer, bystander: Server) -> None:
    with pytest.raises(EnvironmentFailed, match="fork failed after"):
        attempt(hostile, "fork", amount=5000)
    assert attempt(hostile, "echo", "alive").detail == "alive"
    assert_serving(bystander)


def test_spinning_past_the_cpu_limit_is_killed(hostile: SandboxServer, bystander: Server) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionLost):
        attempt(hostile, "spin", amount=60)
    assert time.monotonic() - started < 30
    deadline = time.monotonic() + 5
    while hostile.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "CPU-time limit of 3 s" in (hostile.exit_reason() or "")
    assert_serving(bystander)


def test_nothing_outlives_stop(runtime: SandboxRuntime) -> None:
    marker = f"{uuid.uuid4().int % 10**6}.{os.getpid()}"
    server = runtime.start(HOSTILE)
    assert isinstance(server, SandboxServer)
    attempt(server, "daemon", marker)
    assert processes_with(marker), "the daemon did not start"
    server.stop()
    deadline = time.monotonic() + 2
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not processes_with(marker), "a detached process outlived the sandbox"
    assert_left_nothing(server)
    server.stop()  # idempotent


def test_killed_mid_step_raises_connection_lost_within_a_second(runtime: SandboxRuntime,
                                                                bystander: Server) -> None:
    server = runtime.start(HOSTILE)
    assert isinstance(server, SandboxServer)
    try:
        with server.client(action_type=HostileAction, observation_type=HostileObservation) as env:
            env.reset()
            killed = threading.Timer(0.3, lambda: os.killpg(server.pid or 0, signal.SIGKILL))
            killed.start()
            started = time.monotonic()
            with pytest.raises(ConnectionLost):
                env.step(HostileAction(attempt="sleep", amount=30))
            assert time.monotonic() - started < 1.3
            killed.join()
    finally:
        server.stop()
    assert_left_nothing(server)
    assert_serving(bystander)


@pytest.mark.parametrize(("env", "message"), [
    ("no_such_module:Env", "cannot import"),
    ("tests.runtime.hostile_env:NotThere", "is not a corral Environment"),
])
def test_failed_start_leaves_nothing(runtime: SandboxRuntime, env: str, message: str) -> None:
    before = set(os.listdir(_runtime_dir()))
    with pytest.raises(RuntimeFailed, match=message):
        runtime.start(env, ready_timeout_s=10)
    assert set(os.listdir(_runtime_dir())) <= before


def test_readiness_timeout_leaves_nothing(runtime: SandboxRuntime) -> None:
    before = set(os.listdir(_runtime_dir()))
    with pytest.raises(RuntimeFailed, match="not ready within"):
        runtime.start("tests.runtime.slow_env:SlowStartEnv", ready_timeout_s=1.0)
    assert set(os.listdir(_runtime_dir())) <= before
    assert not processes_with("SlowStartEnv")


OWNER = """
import sys, time
from corral.runtime import launch
server = launch(sys.argv[1], runtime=sys.argv[2])
print(server.pid, server.folder, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("tier", ["sandbox", "subprocess"])
def test_servers_stop_when_their_owner_dies(tier: str) -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER, "echo", tier], stdout=subprocess.PIPE,
                             cwd=Path(__file__).parents[2])
    try:
        assert owner.stdout is not None
        pid_text, folder = owner.stdout.readline().decode().split()
        pid = int(pid_text)
        assert _running(pid)
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 10
        while processes_with(folder) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not processes_with(folder), "the server outlived its owner"
    finally:
        owner.kill()
        owner.wait()
        if owner.stdout:
            owner.stdout.close()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _runtime_dir() -> Any:
    from corral.runtime.process import runtime_dir

    return runtime_dir()
