"""The Docker tier, for real: a locked-down container per server; isolation, limits, kills, failed starts and
owner death leave nothing behind (checked with the daemon and ``docker ps -a``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.errors import ConnectionLost, RuntimeFailed, UsageError
from corral.runtime import Limits, Server
from corral.runtime.docker import ContainerServer, DockerRuntime, parse_image_ref
from corral.runtime.process import runtime_dir

from .conftest import processes_with
from .docker_support import ROOT, docker_client, docker_ps_all, hostile_image, managed_containers
from .hostile_env import HostileAction, HostileObservation
from .isolation import assert_serving, attempt, expect_cpu_kill, expect_fork_stopped, expect_memory_error

LIMITS = Limits(cpu_s=3, memory_mb=256, processes=32, open_files=256)

# The first test to need the test image builds it: minutes on a fresh machine (the base image included).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module", autouse=True)
def private_runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Server folders of this module's own (so "nothing left" is not confused by other test runs)."""
    folder = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CORRAL_RUNTIME_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def image() -> str:
    docker_client()
    return hostile_image().tag


@pytest.fixture(scope="module")
def runtime(image: str) -> DockerRuntime:
    return DockerRuntime()


@pytest.fixture(scope="module")
def bystander(runtime: DockerRuntime, image: str) -> Iterator[Server]:
    """Another container, which must keep serving whatever the hostile one does."""
    with runtime.start(f"{image}#echo") as server:
        yield server


@pytest.fixture
def hostile(runtime: DockerRuntime, image: str) -> Iterator[ContainerServer]:
    server = runtime.start(image, limits=LIMITS)
    assert isinstance(server, ContainerServer)
    try:
        yield server
    finally:
        server.stop()
    assert_left_nothing(server)


def assert_left_nothing(server: ContainerServer) -> None:
    assert not server.alive()
    assert not server.folder.exists(), "the server's folder outlived its stop"
    assert server.name is not None
    assert server.name not in docker_ps_all().split(), "the container outlived its stop"


def test_serves_echo_from_a_locked_down_container(bystander: Server) -> None:
    assert isinstance(bystander, ContainerServer)
    assert bystander.url.startswith("unix:///")
    assert_serving(bystander)
    attrs = bystander.container.attrs
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Memory"] == 1024 << 20
    assert host["MemorySwap"] == host["Memory"]
    assert host["PidsLimit"] == 64
    assert host["NanoCpus"] == 10**9
    assert "/tmp" in host["Tmpfs"]
    assert attrs["Config"]["User"].split(":")[0] not in ("", "0", "root")
    assert [m["Destination"] for m in attrs["Mounts"]] == ["/run/corral"]
    assert attrs["Config"]["Labels"]["dev.corral.owner-pid"] == str(os.getpid())


def test_serves_an_environment_from_a_local_package(runtime: DockerRuntime, image: str) -> None:
    with runtime.start(f"{image}#corral_testpkg.counter:CounterEnv") as server, server.client() as env:
        env.reset()
        env.step({})
        assert env.step({}).reward == 2.0


def test_secrets_reach_the_server_and_nothing_else(runtime: DockerRuntime, image: str) -> None:
    secret = f"s3cret-{uuid.uuid4().hex}"
    with runtime.start(f"{image}#corral_testpkg.counter:CounterEnv", secrets={"COUNTER_SECRET": secret}) as server:
        assert isinstance(server, ContainerServer)
        with server.client() as env:
            assert env.reset().observation.model_dump()["secret"] == secret
        inspected = json.dumps(server.container.attrs)
        assert secret not in inspected
        assert server.token
        assert server.token not in inspected
        assert not processes_with(secret), "a secret is on a command line"
        assert os.listdir(server.folder) == ["server.sock"], "the spec file outlived the server's start"
    with pytest.raises(RuntimeFailed) as failed:
        runtime.start(f"{image}#no_such_module:Env", secrets={"COUNTER_SECRET": secret}, ready_timeout_s=20)
    assert secret not in str(failed.value)


def test_no_network_not_even_the_hosts_loopback(hostile: ContainerServer, bystander: Server) -> None:
    # The outside attempt below is safe only in a container without a network: check before trying.
    assert hostile.container.attrs["HostConfig"]["NetworkMode"] == "none"
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    with listener:
        inside = attempt(hostile, "connect", f"127.0.0.1:{port}")
        assert not inside.escaped, inside.detail
        with pytest.raises(TimeoutError):
            listener.accept()
    outside = attempt(hostile, "connect", "192.0.2.1:80")  # TEST-NET-1: no route exists inside
    assert not outside.escaped, outside.detail
    assert "unreachable" in outside.detail.lower()
    assert_serving(bystander)


@pytest.mark.parametrize("target", ["/etc/corral-escape", "/usr/corral-escape", "/corral-escape",
                                    "/opt/corral/corral-escape", f"{ROOT}/corral-escape"])
def test_cannot_write_outside_its_tmp(hostile: ContainerServer, target: str) -> None:
    observation = attempt(hostile, "write", target)
    assert not observation.escaped, observation.detail
    assert not Path(target).exists()
    assert attempt(hostile, "write", "/tmp/mine").escaped  # its own tmp is writable


def test_cannot_read_the_hosts_home(hostile: ContainerServer, home_secret: Path) -> None:
    observation = attempt(hostile, "read", str(home_secret))
    assert not observation.escaped, observation.detail


def test_memory_past_the_limit_is_an_error_not_a_crash(hostile: ContainerServer, bystander: Server) -> None:
    expect_memory_error(hostile, bystander)


def test_unbounded_fork_is_stopped(hostile: ContainerServer, bystander: Server) -> None:
    expect_fork_stopped(hostile, bystander)


def test_spinning_past_the_cpu_limit_is_killed(hostile: ContainerServer, bystander: Server) -> None:
    expect_cpu_kill(hostile, bystander, "CPU time limit (3 s)")


def test_nothing_outlives_stop(runtime: DockerRuntime, image: str) -> None:
    marker = f"{uuid.uuid4().int % 10**6}.{os.getpid()}"
    server = runtime.start(image)
    assert isinstance(server, ContainerServer)
    attempt(server, "daemon", marker)
    assert processes_with(marker), "the daemon did not start"
    server.stop()
    assert not processes_with(marker), "a detached process outlived the container"
    assert_left_nothing(server)
    server.stop()  # idempotent


def test_killed_mid_step_raises_connection_lost_within_a_second(runtime: DockerRuntime, image: str,
                                                                bystander: Server) -> None:
    server = runtime.start(image)
    assert isinstance(server, ContainerServer)
    try:
        with server.client(action_type=HostileAction, observation_type=HostileObservation) as env:
            env.reset()
            killed = threading.Timer(0.3, server.container.kill)
            killed.start()
            started = time.monotonic()
            with pytest.raises(ConnectionLost):
                env.step(HostileAction(attempt="sleep", amount=30))
            assert time.monotonic() - started < 1.3
            killed.join()
        assert server.exit_reason() == "killed by SIGKILL"
    finally:
        server.stop()
    assert_left_nothing(server)
    assert_serving(bystander)


@pytest.mark.parametrize(("env", "message"), [
    ("corral/no-such-image:0", "not in the local Docker daemon"),
    ("{image}#no_such_module:Env", "cannot import"),
    ("{image}#hostile_env:NotThere", "has no attribute"),
    ("{image}#corral_testpkg.slow:SlowImportEnv", "not ready within"),
])
def test_failed_start_leaves_nothing(runtime: DockerRuntime, image: str, env: str, message: str) -> None:
    folders = set(os.listdir(runtime_dir()))
    containers = {c.name for c in managed_containers()}
    with pytest.raises(RuntimeFailed, match=message):
        runtime.start(env.format(image=image), ready_timeout_s=3)
    assert set(os.listdir(runtime_dir())) <= folders
    assert {c.name for c in managed_containers()} <= containers


def test_an_image_without_an_environment_is_refused(runtime: DockerRuntime) -> None:
    from corral.runtime.images import base_image

    with pytest.raises(RuntimeFailed, match="names no environment"):
        runtime.start(base_image(client=docker_client()).tag)
    with pytest.raises(UsageError):
        parse_image_ref("image#")
    assert parse_image_ref("reg.example:5000/a/b:1@sha256:00#pkg.mod:Env") == (
        "reg.example:5000/a/b:1@sha256:00", "pkg.mod:Env")


def test_opt_in_network_publishes_on_loopback_only(image: str) -> None:
    with DockerRuntime(network="bridge").start(f"{image}#echo") as server:
        assert isinstance(server, ContainerServer)
        assert server.url.startswith("http://127.0.0.1:")
        assert_serving(server)
        bindings = server.container.attrs["NetworkSettings"]["Ports"]["8000/tcp"]
        assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    assert_left_nothing(server)


OWNER = """
import sys, time
from corral.runtime.docker import DockerRuntime
server = DockerRuntime().start(sys.argv[1])
print(server.name, server.folder, flush=True)
time.sleep(600)
"""


def test_the_keeper_removes_containers_when_their_owner_is_killed(image: str) -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER, f"{image}#echo"], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert owner.stdout is not None
        name, folder = owner.stdout.readline().decode().split()
        assert name in docker_ps_all().split()
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 15
        while name in docker_ps_all().split() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert name not in docker_ps_all().split(), "the container outlived its owner"
        assert not Path(folder).exists()
    finally:
        owner.kill()
        owner.wait()
        if owner.stdout:
            owner.stdout.close()


def test_a_built_in_environment_is_launched_by_name() -> None:
    from corral.runtime import launch

    docker_client()
    with launch("echo", runtime="docker") as server:
        assert isinstance(server, ContainerServer)
        assert server.image == "echo"
        assert_serving(server)
    assert_left_nothing(server)
