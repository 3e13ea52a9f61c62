"""Garbage collection: what dead owners left behind goes; what live owners use stays."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral.runtime import ServerSpec
from corral.runtime.docker import ContainerServer, DockerRuntime
from corral.runtime.gc import collect_garbage
from corral.runtime.process import SOCKET, SPEC_FILE, ProcessServer, SubprocessRuntime, write_spec
from corral.runtime.sandbox import SandboxRuntime, sandbox_available

from .conftest import processes_with
from .docker_support import ROOT, docker_client, docker_ps_all, hostile_image

# The first test to need the test image builds it: minutes on a fresh machine (the base image included).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def private_runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A runtime folder of this test's own, so only what the test made there can be judged stale."""
    folder = tmp_path / "run"
    folder.mkdir()
    monkeypatch.setenv("CORRAL_RUNTIME_DIR", str(folder))
    return folder


ABANDON = """
import os, sys
from corral.runtime.docker import DockerRuntime
server = DockerRuntime(keeper=False).start(sys.argv[1])
print(server.name, server.folder, flush=True)
os._exit(0)  # no stop, no keeper: the container is an orphan
"""


def test_an_orphaned_container_is_removed(private_runtime_dir: Path) -> None:
    docker_client()
    image = hostile_image().tag
    done = subprocess.run([sys.executable, "-c", ABANDON, f"{image}#echo"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=True)
    name, folder = done.stdout.split()
    assert name in docker_ps_all().split()
    assert name in collect_garbage(dry_run=True).containers
    assert name in docker_ps_all().split(), "a dry run removed something"
    assert name in collect_garbage().containers
    assert name not in docker_ps_all().split()
    assert not Path(folder).exists()


def test_a_live_owners_servers_stay(private_runtime_dir: Path) -> None:
    docker_client()
    image = hostile_image().tag
    with DockerRuntime().start(f"{image}#echo") as container, SubprocessRuntime().start("echo") as process:
        assert isinstance(container, ContainerServer)
        assert isinstance(process, ProcessServer)
        garbage = collect_garbage(min_age_s=0)
        assert container.name not in garbage.containers
        assert process.pid not in garbage.processes
        assert not garbage.folders
        with process.client() as env:
            env.reset()


@pytest.mark.skipif(not sandbox_available()[0], reason=f"no bubblewrap sandboxes here: {sandbox_available()[1]}")
def test_a_live_owners_sandboxes_stay(private_runtime_dir: Path) -> None:
    """bubblewrap's outer process drops the lease pipe; its sandbox's pid 1 keeps it, so it is not an orphan."""
    with SandboxRuntime(zygote=False).start("echo") as server:
        garbage = collect_garbage(min_age_s=0)
        assert not garbage.processes
        with server.client() as env:
            env.reset()


ORPHAN = """
import os, subprocess, sys
if os.fork() == 0:  # the server's parent exits at once: init adopts it, no lease pipe ties it to an owner
    os.setsid()
    subprocess.Popen([sys.executable, "-m", "corral.runtime.child", sys.argv[1]], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os._exit(0)
"""


def test_an_orphaned_server_process_and_its_folder_are_removed(private_runtime_dir: Path) -> None:
    folder = private_runtime_dir / "corral-orphan01"
    folder.mkdir()
    write_spec(folder / SPEC_FILE, ServerSpec("echo"), uds=str(folder / SOCKET), lease=None, python_path=sys.path)
    subprocess.run([sys.executable, "-c", ORPHAN, str(folder / SPEC_FILE)], check=True, timeout=30)
    deadline = time.monotonic() + 20
    while not (folder / SOCKET).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = processes_with(str(folder))
    assert pids
    assert set(pids) <= set(collect_garbage(dry_run=True, min_age_s=0).processes)
    assert processes_with(str(folder)) == pids, "a dry run killed something"
    garbage = collect_garbage(min_age_s=0)
    assert set(pids) <= set(garbage.processes)
    assert garbage.folders == [str(folder)]
    assert not processes_with(str(folder))
    assert not folder.exists()


def test_only_stale_server_folders_go(private_runtime_dir: Path) -> None:
    stale, young, foreign = (private_runtime_dir / f"corral-{name}" for name in ("stale123", "young123", "other123"))
    for folder in (stale, young, foreign):
        folder.mkdir()
        (folder / "server.log").write_text("")
    (foreign / "notes.txt").write_text("not a server's")
    for folder in (stale, foreign):
        os.utime(folder, (time.time() - 3600, time.time() - 3600))
    garbage = collect_garbage(min_age_s=60)
    assert garbage.folders == [str(stale)]
    assert not stale.exists()
    assert young.exists()
    assert foreign.exists()
