"""The bubblewrap tier, for real: isolation, limits, kills, failed starts and owner death leave nothing.

Every test runs against both ways of starting a sandboxed server: forked from a zygote, and a bubblewrap
sandbox of its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.errors import ConnectionLost, RuntimeFailed
from corral.runtime import Limits, Server
from corral.runtime.process import runtime_dir
from corral.runtime.sandbox import SandboxRuntime, SandboxServer, ZygoteServer, sandbox_available
from corral.runtime.zygote import stop_all

from .conftest import processes_with
from .hostile_env import HostileAction, HostileObservation
from .isolation import assert_serving, attempt, expect_cpu_kill, expect_fork_stopped, expect_memory_error

HOSTILE = "tests.runtime.hostile_env:HostileEnv"

available, why = sandbox_available()
pytestmark = pytest.mark.skipif(not available, reason=f"this machine cannot run bubblewrap sandboxes: {why}")


@contextlib.contextmanager
def private_runtime_dir() -> Iterator[Path]:
    """Server folders (and zygotes) of the caller's own, so other runs on the machine cannot blur "nothing
    left"; the zygotes started meanwhile stop at the end."""
    folder = Path(tempfile.mkdtemp(prefix="crt"))  # short: a Unix socket's path has room for 107 bytes
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CORRAL_RUNTIME_DIR", str(folder))
        try:
            yield folder
        finally:
            stop_all()
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def _private_runtime_dir() -> Iterator[Path]:
    with private_runtime_dir() as folder:
        yield folder


@pytest.fixture(scope="module", params=["zygote", "bwrap"])
def runtime(request: pytest.FixtureRequest) -> SandboxRuntime:
    runtime = SandboxRuntime(zygote=request.param == "zygote")
    if request.param == "zygote" and not runtime.uses_zygote():
        pytest.skip("this machine cannot run a sandbox zygote (the log says why)")
    return runtime


@pytest.fixture(scope="module")
def bystander(runtime: SandboxRuntime) -> Iterator[Server]:
    """Another sandboxed server, which must keep serving whatever the hostile one does."""
    with runtime.start("echo") as server:
        yield server


@pytest.fixture
def hostile(runtime: SandboxRuntime) -> Iterator[SandboxServer]:
    server = runtime.start(HOSTILE, limits=Limits(cpu_s=3, memory_mb=512, processes=32, open_files=256))
    assert isinstance(server, SandboxServer)
    namespaces = pid_namespaces(server)
    try:
        yield server
    finally:
        server.stop()
    assert_left_nothing(server, namespaces)


def assert_left_nothing(server: SandboxServer, namespaces: set[str]) -> None:
    assert not server.alive()
    assert not server.folder.exists(), "the server's folder outlived its stop"
    assert not processes_with(server.folder.name), "a process of the sandbox outlived its stop"
    assert namespaces, "the server ran in no pid namespace of its own"
    # A zygote's server is gone when stop returns; bubblewrap's own pid 1 may take a moment more to die.
    deadline = time.monotonic() + (0 if isinstance(server, ZygoteServer) else 2)
    while processes_in(namespaces) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not processes_in(namespaces), "a process in the sandbox's pid namespace outlived its stop"
    if server.cgroup is not None:
        assert not any(d.exists() for d in server.cgroup.dirs), "the sandbox's cgroup outlived its stop"


def pid_namespaces(server: Server | int) -> set[str]:
    """The pid namespaces, other than this process's, of a server's processes (``server.pid`` and below)."""
    root = server if isinstance(server, int) else getattr(server, "pid", None)
    assert root is not None
    ours = _pid_namespace("self")
    return {ns for pid in descendants(root) if (ns := _pid_namespace(str(pid))) not in ("", ours)}


def processes_in(namespaces: set[str]) -> list[int]:
    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _pid_namespace(pid) in namespaces]


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rindex(b")") + 2:].split()[1]), []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def server_folders() -> set[Path]:
    """Every sandboxed server's folder: bubblewrap's in the runtime folder, zygotes' in their own folders."""
    root = runtime_dir()
    return {*root.glob("corral-sbx-*"), *root.glob("corral-zyg-*/servers/corral-sbx-*")}


def _pid_namespace(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


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
    expect_memory_error(hostile, bystander)


def test_unbounded_fork_is_stopped(hostile: SandboxServer, bystander: Server) -> None:
    expect_fork_stopped(hostile, bystander)


def test_spinning_past_the_cpu_limit_is_killed(hostile: SandboxServer, bystander: Server) -> None:
    expect_cpu_kill(hostile, bystander, "CPU-time limit of 3 s")


def test_nothing_outlives_stop(runtime: SandboxRuntime) -> None:
    marker = f"{uuid.uuid4().int % 10**6}.{os.getpid()}"
    server = runtime.start(HOSTILE)
    assert isinstance(server, SandboxServer)
    attempt(server, "daemon", marker)
    assert processes_with(marker), "the daemon did not start"
    namespaces = pid_namespaces(server)
    server.stop()
    deadline = time.monotonic() + 2
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not processes_with(marker), "a detached process outlived the sandbox"
    assert_left_nothing(server, namespaces)
    server.stop()  # idempotent


def test_killed_mid_step_raises_connection_lost_within_a_second(runtime: SandboxRuntime,
                                                                bystander: Server) -> None:
    server = runtime.start(HOSTILE)
    assert isinstance(server, SandboxServer)
    namespaces = pid_namespaces(server)
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
    assert_left_nothing(server, namespaces)
    assert_serving(bystander)


@pytest.mark.parametrize(("env", "message"), [
    ("no_such_module:Env", "cannot import"),
    ("tests.runtime.hostile_env:NotThere", "has no attribute"),
])
def test_failed_start_leaves_nothing(runtime: SandboxRuntime, env: str, message: str) -> None:
    before = server_folders()
    with pytest.raises(RuntimeFailed, match=message):
        runtime.start(env, ready_timeout_s=10)
    assert server_folders() <= before


def test_readiness_timeout_leaves_nothing(runtime: SandboxRuntime) -> None:
    before = server_folders()
    with pytest.raises(RuntimeFailed, match="not ready within"):
        runtime.start("tests.runtime.slow_env:SlowStartEnv", ready_timeout_s=1.0)
    assert server_folders() <= before
    assert not processes_with("SlowStartEnv")


OWNER = """
import sys, time
from corral.runtime import get_runtime
options = {"zygote": sys.argv[3] == "zygote"} if sys.argv[2] == "sandbox" else {}
server = get_runtime(sys.argv[2], **options).start(sys.argv[1])
zygote = getattr(server, "zygote", None)
print(server.pid, server.folder, zygote.pid if zygote else 0, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize(("tier", "mode"), [("sandbox", "zygote"), ("sandbox", "bwrap"), ("subprocess", "")])
def test_servers_stop_when_their_owner_dies(tier: str, mode: str) -> None:
    if mode == "zygote" and not SandboxRuntime().uses_zygote():
        pytest.skip("this machine cannot run a sandbox zygote (the log says why)")
    owner = subprocess.Popen([sys.executable, "-c", OWNER, "echo", tier, mode], stdout=subprocess.PIPE,
                             cwd=Path(__file__).parents[2])
    try:
        assert owner.stdout is not None
        pid_text, folder, zygote_text = owner.stdout.readline().decode().split()
        pid, zygote = int(pid_text), int(zygote_text)
        assert _running(pid)
        assert (zygote != 0) == (mode == "zygote")
        namespaces = pid_namespaces(pid) | (pid_namespaces(zygote) if zygote else set())
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 10
        while (processes_with(folder) or processes_in(namespaces) or _running(pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not processes_with(folder), "the server outlived its owner"
        assert not processes_in(namespaces), "a process of the sandbox (or its zygote) outlived the owner"
        assert not _running(pid), "the server outlived its owner"
        assert not (zygote and _running(zygote)), "the zygote outlived its owner"
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

