"""Real servers and real clients on both sides: openenv-core 0.3.0 (the peer, in its own venv) and Corral.

Every server is a subprocess on 127.0.0.1 and a free port, started once per test session and
terminated through its ``Popen`` handle. The peer's clients run in ``peer/client_driver.py``; since
importing openenv takes ~3.5 s and a scenario well under one, each side's scenarios run as one
``--jobs`` batch (the same functions, the same JSON as one run per scenario).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "peer" / "client_driver.py"
PEER_SERVER = REPO / "peer" / "echo_server.py"
RAISE_ON = "boom"  # the peer echo server raises on a step with this message
PEER_CAPACITY = 1


def free_ports(count: int, avoid: frozenset[int] = frozenset()) -> list[int]:
    """Distinct free ports on 127.0.0.1, all held at once so none repeats (two servers given one port
    would have the one that binds answer the other's health checks)."""
    sockets: list[socket.socket] = []
    try:
        ports: list[int] = []
        while len(ports) < count:
            sock = socket.socket()
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port not in avoid:
                ports.append(port)
        return ports
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Server:
    """A server subprocess: ``argv`` gets ``--port P`` appended; ``stop`` terminates it by its handle."""

    name: str
    argv: list[str]
    logs: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.logs / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self, port: int) -> None:
        self.port = port
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.argv, "--port", str(self.port)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start_all(servers: list[Server], timeout: float = 30.0) -> None:
    """Launch every server at once (the peer needs 3-4 s to import), then poll ``/health`` on each.

    A server that exits before it is healthy (say, its port was taken meanwhile) is relaunched on
    another port, twice at most.
    """
    for server, port in zip(servers, free_ports(len(servers)), strict=True):
        server.launch(port)
    retries = dict.fromkeys((s.name for s in servers), 2)
    deadline = time.monotonic() + timeout
    waiting = list(servers)
    while waiting:
        for server in list(waiting):
            assert server.process is not None
            if server.process.poll() is not None:
                if retries[server.name] == 0:
                    pytest.fail(f"{server.name} exited with {server.process.returncode} before it answered "
                                f"/health; its log:\n{server.log_tail()}")
                retries[server.name] -= 1
                server.launch(free_ports(1, avoid=frozenset(s.port for s in servers))[0])
            elif server.healthy():
                waiting.remove(server)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(s.name for s in waiting)
            pytest.fail(f"{names} did not answer GET /health within {timeout:g} s; log of {waiting[0].name}:\n"
                        f"{waiting[0].log_tail()}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def peer_python() -> str:
    """The peer venv's python, built by ``scripts/peer-venv`` if needed. Failing to build it fails the tests:
    compatibility is checked against the real peer or not at all."""
    script = REPO / "scripts" / "peer-venv"
    try:
        done = subprocess.run([str(script)], cwd=REPO, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not build the OpenEnv peer venv with {script}: {exc}")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not os.access(lines[-1], os.X_OK):
        pytest.fail(
            f"could not build the OpenEnv peer venv (openenv-core 0.3.0) with {script} (exit {done.returncode}); "
            f"the compatibility tests need it. Run scripts/peer-venv and fix what it reports:\n"
            f"{done.stderr.strip()[-3000:]}"
        )
    return lines[-1]


@dataclass
class PeerServers:
    """openenv-core's own server (``peer/echo_server.py``)."""

    echo: Server  # raises on a step with RAISE_ON, plenty of sessions
    small: Server  # PEER_CAPACITY sessions


@pytest.fixture(scope="session")
def peer_servers(peer_python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerServers]:
    logs = tmp_path_factory.mktemp("peer-logs")
    base = [peer_python, str(PEER_SERVER), "--log-level", "warning"]
    servers = PeerServers(
        echo=Server("peer-echo", [*base, "--raise-on", RAISE_ON], logs),
        small=Server("peer-small", [*base, "--max-sessions", str(PEER_CAPACITY)], logs),
    )
    started = [servers.echo, servers.small]
    try:
        start_all(started)
        yield servers
    finally:
        for server in started:
            server.stop()


@dataclass
class CorralServers:
    """``corral serve`` subprocesses."""

    echo: Server
    small: Server  # echo with --capacity PEER_CAPACITY
    guess: Server  # has the MCP tool range_size; reset(high=0) makes the environment raise


@pytest.fixture(scope="session")
def corral_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorralServers]:
    logs = tmp_path_factory.mktemp("corral-logs")

    def serve(env: str, *options: str) -> list[str]:
        return [sys.executable, "-m", "corral.cli.main", "serve", env, "--log-level", "warning", *options]

    servers = CorralServers(
        echo=Server("corral-echo", serve("echo"), logs),
        small=Server("corral-small", serve("echo", "--capacity", str(PEER_CAPACITY)), logs),
        guess=Server("corral-guess", serve("guess"), logs),
    )
    started = [servers.echo, servers.small, servers.guess]
    try:
        start_all(started)
        yield servers
    finally:
        for server in started:
            server.stop()


class DriverResults:
    """What ``peer/client_driver.py`` printed for each job; a job that raised fails the test that reads it."""

    def __init__(self, results: dict[str, Any]) -> None:
        self._results = results

    def __getitem__(self, name: str) -> Any:
        result = self._results[name]
        if "error" in result:
            pytest.fail(f"client_driver.py job {name!r} raised:\n{result['error']}")
        return result


def run_jobs(
    peer_python: str, batches: list[dict[str, list[str]]], workdir: Path, timeout: float = 60
) -> dict[str, Any]:
    """Run each batch of driver jobs in its own process, all batches at once; merge their outputs."""
    processes = []
    try:
        for i, jobs in enumerate(batches):
            path = workdir / f"jobs-{i}.json"
            path.write_text(json.dumps(jobs))
            processes.append(subprocess.Popen([peer_python, str(DRIVER), "--jobs", str(path)], cwd=REPO,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        merged: dict[str, Any] = {}
        for process in processes:
            out, err = process.communicate(timeout=timeout)
            if process.returncode != 0:
                pytest.fail(f"client_driver.py --jobs exited with {process.returncode}:\n{err[-3000:]}")
            merged.update(json.loads(out))
        return merged
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()


def scenario(server: Server, name: str, *options: str) -> list[str]:
    return ["--url", server.url, "--scenario", name, *options]


@pytest.fixture(scope="session")
def driver(
    peer_python: str, peer_servers: PeerServers, corral_servers: CorralServers, tmp_path_factory: pytest.TempPathFactory
) -> DriverResults:
    """openenv's clients (``client_driver.py``) against both servers, the same scenarios on each."""
    peer, corral = peer_servers, corral_servers
    capacity = ("--max-sessions", str(PEER_CAPACITY))
    tools = ("--tool", "range_size", "--reset", '{"seed": 3}', "--action", '{"guess": 50}',
             "--bad-reset", '{"seed": 3, "high": 0}')
    on_peer = {
        "peer.basic": scenario(peer.echo, "basic"),
        "peer.errors": scenario(peer.echo, "errors", "--raise-on", RAISE_ON),
        "peer.http": scenario(peer.echo, "http", "--raise-on", RAISE_ON),
        "peer.mcp": scenario(peer.echo, "mcp"),
        "peer.capacity": scenario(peer.small, "capacity", *capacity),
    }
    on_corral = {
        "corral.basic": scenario(corral.echo, "basic"),
        "corral.errors": scenario(corral.echo, "errors"),
        "corral.http": scenario(corral.echo, "http"),
        "corral.mcp": scenario(corral.echo, "mcp"),
        "corral.capacity": scenario(corral.small, "capacity", *capacity),
        "corral.tools": scenario(corral.guess, "tools", *tools),
    }
    return DriverResults(run_jobs(peer_python, [on_peer, on_corral], tmp_path_factory.mktemp("driver")))
