"""Sandboxed servers forked from a zygote, for real: siblings share nothing, a stop leaves nothing, a dead
zygote is replaced, and a machine that cannot run one falls back to a bubblewrap sandbox per server."""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from corral.runtime import Server
from corral.runtime import sandbox as sandbox_module
from corral.runtime.process import runtime_dir
from corral.runtime.sandbox import SandboxRuntime, SandboxServer, ZygoteServer, sandbox_available
from corral.runtime.zygote import OWNER, PREFIX

from .sibling_env import LookAction, LookObservation
from .test_sandbox import _running, assert_left_nothing, assert_serving, pid_namespaces, private_runtime_dir

SIBLING = "tests.runtime.sibling_env:SiblingEnv"

available, why = sandbox_available()
pytestmark = pytest.mark.skipif(not available, reason=f"this machine cannot run bubblewrap sandboxes: {why}")


@pytest.fixture(scope="module", autouse=True)
def _private_runtime_dir() -> Iterator[Path]:
    with private_runtime_dir() as folder:
        yield folder


@pytest.fixture(scope="module")
def runtime() -> SandboxRuntime:
    runtime = SandboxRuntime()
    if not runtime.uses_zygote():
        pytest.skip("this machine cannot run a sandbox zygote (the log says why)")
    return runtime


@pytest.fixture(scope="module")
def siblings(runtime: SandboxRuntime) -> Iterator[tuple[ZygoteServer, ZygoteServer]]:
    with runtime.start(SIBLING) as first, runtime.start(SIBLING) as second:
        assert isinstance(first, ZygoteServer)
        assert isinstance(second, ZygoteServer)
        assert first.zygote is second.zygote
        yield first, second


def look(server: Server, look: str, path: str = "") -> LookObservation:
    with server.client(action_type=LookAction, observation_type=LookObservation) as env:
        env.reset()
        observation = env.step(LookAction(look=look, path=path)).observation
    assert isinstance(observation, LookObservation)
    return observation


@pytest.mark.parametrize("folder", ["/tmp", "/dev/shm", "/dev"])
def test_siblings_have_their_own_writable_folders(siblings: tuple[ZygoteServer, ZygoteServer], folder: str) -> None:
    first, second = siblings
    path = f"{folder}/corral-{uuid.uuid4().hex[:8]}"
    assert look(first, "write", path).ok
    assert look(first, "read", path).ok
    assert not look(second, "read", path).ok
    assert not Path(path).exists()


def test_siblings_see_only_their_own_processes(siblings: tuple[ZygoteServer, ZygoteServer]) -> None:
    first, second = siblings
    for server in siblings:
        pids = [name for name in look(server, "list", "/proc").found if name.isdigit()]
        assert pids == ["1", "2"], "a server sees processes besides its init and itself"
    assert look(first, "namespaces").found[0] != look(second, "namespaces").found[0]


def test_siblings_cannot_reach_each_others_files_or_sockets(siblings: tuple[ZygoteServer, ZygoteServer]) -> None:
    first, second = siblings
    assert look(first, "list", "/run/corral").found == ["server.log", "server.sock"]
    for covered in ("/run/corral-servers", "/run/corral-proc"):
        assert look(first, "list", covered).found == []
    assert not look(first, "reach", f"/run/corral-servers/{second.folder.name}/server.sock").ok
    name = f"corral-{uuid.uuid4().hex[:8]}"
    with first.client(action_type=LookAction, observation_type=LookObservation) as env:
        env.reset()
        assert env.step(LookAction(look="listen", path=name)).observation.model_dump()["ok"]
        assert look(first, "reach", name).ok  # its own network namespace
        assert not look(second, "reach", name).ok


def test_the_zygote_keeps_no_capability(siblings: tuple[ZygoteServer, ZygoteServer]) -> None:
    zygote = siblings[0].zygote
    assert zygote.pid is not None
    with open(f"/proc/{zygote.pid}/status") as handle:
        status = dict(line.split(":", 1) for line in handle)
    for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(status[key], 16) == 0, f"the zygote holds capabilities ({key})"
    assert status["NoNewPrivs"].strip() == "1"


def test_stop_leaves_nothing_of_the_server(runtime: SandboxRuntime) -> None:
    server = runtime.start(SIBLING)
    assert isinstance(server, ZygoteServer)
    assert server.pid is not None
    keeper = _parent(server.pid)
    namespaces = pid_namespaces(server)
    assert look(server, "write", "/tmp/mine").ok
    server.stop()
    assert_left_nothing(server, namespaces)
    assert not _running(server.pid), "the server's init outlived its stop"
    deadline = time.monotonic() + 1  # the keeper reports how init ended, then exits
    while _running(keeper) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _running(keeper), "the server's keeper outlived its stop"
    server.stop()  # idempotent


def test_many_servers_start_at_once(runtime: SandboxRuntime) -> None:
    with ThreadPoolExecutor(6) as pool:
        servers = list(pool.map(lambda _: runtime.start("echo"), range(6)))
    try:
        assert len({server.pid for server in servers}) == 6
        for server in servers:
            assert_serving(server)
    finally:
        for server in servers:
            server.stop()


def test_a_dead_zygote_is_replaced() -> None:
    runtime = SandboxRuntime(preload=["corral.envs.guess"])  # a zygote of its own
    server = runtime.start("echo")
    assert isinstance(server, ZygoteServer)
    dead = server.zygote
    assert dead.pid is not None
    namespaces = pid_namespaces(server)
    os.kill(dead.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while server.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server.alive(), "a server outlived its zygote"
    assert "zygote died" in (server.exit_reason() or "")
    server.stop()
    assert_left_nothing(server, namespaces)
    with runtime.start("echo") as fresh:
        assert isinstance(fresh, ZygoteServer)
        assert fresh.zygote is not dead
        assert_serving(fresh)
    assert dead.folder is not None
    assert not dead.folder.exists(), "the dead zygote's folder was left behind"


def test_preloaded_modules_are_imported_once_in_the_zygote(runtime: SandboxRuntime) -> None:
    with SandboxRuntime(preload=["tests.runtime.sibling_env"]).serving(SIBLING) as server:
        serving_in, imported_in = look(server, "namespaces").found
        assert serving_in != imported_in
    with runtime.serving(SIBLING) as server:
        serving_in, imported_in = look(server, "namespaces").found
        assert serving_in == imported_in


def test_orphaned_zygote_folders_are_removed(runtime: SandboxRuntime) -> None:
    orphan = Path(runtime_dir()) / f"{PREFIX}orphan{uuid.uuid4().hex[:6]}"
    orphan.mkdir()
    (orphan / OWNER).write_text("999999999 1")  # no such process
    with SandboxRuntime(preload=["corral.envs"]).serving("echo"):
        assert not orphan.exists()


def test_falls_back_to_a_sandbox_per_server(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(sandbox_module, "zygote_bwrap_arguments", lambda servers: ["--no-such-option"])
    runtime = SandboxRuntime(preload=["corral.server"])  # a zygote of its own, which cannot start
    before = set(runtime_dir().glob(f"{PREFIX}*"))
    with (caplog.at_level(logging.WARNING, logger="corral.runtime.sandbox"), runtime.serving("echo") as first,
          runtime.serving("echo") as second):
        for server in (first, second):
            assert type(server) is SandboxServer
            assert_serving(server)
    warnings = [r for r in caplog.records if "zygote cannot run here" in r.getMessage()]
    assert len(warnings) == 1, "the reason for the fallback is logged once"
    assert "no-such-option" in warnings[0].getMessage()
    assert not runtime.uses_zygote()
    assert set(runtime_dir().glob(f"{PREFIX}*")) <= before, "the failed zygote left its folder"


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        stat = handle.read()
    return int(stat[stat.rindex(b")") + 2:].split()[1])
