"""Start and stop the two servers as subprocesses, read their CPU and memory, and run load processes.

Every process started here is stopped through its own ``Popen`` handle (terminate, then kill), never by
name. Servers listen on 127.0.0.1 only, on a free port picked per start.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import os
import platform
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOAD = ROOT / "benchmarks" / "load.py"
HOST = "127.0.0.1"


class BenchError(RuntimeError):
    pass


def corral_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


_PEER_PY: str | None = None


def peer_python() -> str:
    """The peer venv's interpreter (``scripts/peer-venv`` builds the venv the first time, ~45 s)."""
    global _PEER_PY
    if _PEER_PY is None:
        out = subprocess.run([str(ROOT / "scripts" / "peer-venv")], capture_output=True, text=True, check=True,
                             timeout=900)
        _PEER_PY = out.stdout.strip().splitlines()[-1]
    return _PEER_PY


def child_env() -> dict[str, str]:
    """Environment of every child: the repository root on PYTHONPATH (for ``benchmarks.envs``).

    ``CORRAL_BENCH_SRC=/path/to/src`` puts another Corral source tree first (A/B-testing a patch without
    touching this checkout); the peer's processes never import corral, so it does not affect them.
    """
    env = dict(os.environ)
    paths = [p for p in (env.get("CORRAL_BENCH_SRC"), str(ROOT), env.get("PYTHONPATH")) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("OPENENV_CLIENT_MODE", None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def proc_threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def health_ok(port: int, timeout: float = 1.0) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        conn.close()


@dataclass
class Server:
    """One server process. ``impl`` is ``corral`` or ``peer``; ``argv`` gets ``--port`` appended."""

    impl: str
    argv: list[str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    healthy_s: float = 0.0
    log: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> Server:
        """Spawn, then poll ``GET /health`` until 200; ``healthy_s`` is spawn → first 200."""
        self.port = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen([*self.argv, "--port", str(self.port)], cwd=ROOT, env=child_env(),
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = self.started_at + timeout
        while True:
            if health_ok(self.port, timeout=0.5):
                self.healthy_s = time.perf_counter() - self.started_at
                return self
            if self.proc.poll() is not None:
                raise BenchError(f"{self.impl} server exited with {self.proc.returncode}: {self.log_tail()}")
            if time.perf_counter() > deadline:
                self.stop()
                raise BenchError(f"{self.impl} server not healthy within {timeout:g}s")
            time.sleep(0.002)

    def log_tail(self, limit: int = 2000) -> str:
        if self.log is None:
            return ""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self) -> int:
        return proc_rss_kib(self.pid)

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.log is not None:
            self.log.close()
            self.log = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def corral_server(env: str = "echo", *extra: str) -> Server:
    """``corral serve ENV`` (run as ``python -m corral.cli.main serve``, which is what the script does)."""
    argv = [corral_python(), "-m", "corral.cli.main", "serve", env, "--host", HOST, "--log-level", "warning", *extra]
    return Server("corral", argv)


def peer_server(max_sessions: int = 1024, script: str = "peer/echo_server.py") -> Server:
    return Server("peer", [peer_python(), str(ROOT / script), "--max-sessions", str(max_sessions)])


def server_for(impl: str, max_sessions: int = 1024) -> Server:
    if impl == "corral" and os.environ.get("CORRAL_BENCH_BARE"):
        # The no-ASGI measuring stick of benchmarks/prototype_bare_ws.py stands in for `corral serve echo`.
        return Server("corral", [corral_python(), str(ROOT / "benchmarks" / "prototype_bare_ws.py")])
    if impl == "corral":
        return corral_server("echo", "--capacity", str(max(max_sessions, 16)))
    return peer_server(max_sessions)


@contextlib.contextmanager
def running(impl: str, max_sessions: int = 1024) -> Iterator[Server]:
    server = server_for(impl, max_sessions)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- load processes ------------------------------------------------------------------------------


def load_argv(impl: str, url: str, mode: str, *args: Any) -> list[str]:
    python = peer_python() if impl == "peer" else corral_python()
    return [python, str(LOAD), "--impl", impl, "--url", url, mode, *map(str, args)]


def run_load(impl: str, url: str, mode: str, *args: Any, timeout: float = 300.0) -> dict[str, Any]:
    """Run one load process to completion; return its result object."""
    argv = load_argv(impl, url, mode, *args)
    proc = subprocess.Popen(argv, cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise BenchError(f"load {impl} {mode} timed out after {timeout:g}s: {err.decode()[-1500:]}") from None
    if proc.returncode != 0:
        raise BenchError(f"load {impl} {mode} failed ({proc.returncode}): {err.decode()[-1500:]}")
    return last_event(out.decode(), "result")


def last_event(text: str, event: str) -> dict[str, Any]:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            obj = json.loads(line)
            if obj.get("event") == event:
                return dict(obj)
    raise BenchError(f"no {event!r} line in load output: {text[-500:]}")


class LoadProcess:
    """A load process that reports an ``opened`` event, holds until released on stdin, then a result."""

    def __init__(self, impl: str, url: str, mode: str, *args: Any) -> None:
        self.proc = subprocess.Popen(load_argv(impl, url, mode, *args), cwd=ROOT, env=child_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._buffer = b""

    def wait_event(self, event: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                if line.strip().startswith(b"{"):
                    obj = json.loads(line)
                    if obj.get("event") == event:
                        return dict(obj)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"load process sent no {event!r} within {timeout:g}s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    err = self.proc.stderr.read().decode()[-1500:] if self.proc.stderr else ""
                    raise BenchError(f"load process exited before {event!r}: {err}")
                self._buffer += chunk

    def release(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(b"release\n")
            self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


# --- machine ---------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python_corral": subprocess.run([corral_python(), "-c", "import sys; print(sys.version.split()[0])"],
                                        capture_output=True, text=True).stdout.strip(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    return info


def peer_info() -> dict[str, Any]:
    code = ("import sys, importlib.metadata as m; print(sys.version.split()[0]); "
            "print(m.version('openenv-core')); print(m.version('uvicorn')); print(m.version('websockets'))")
    lines = subprocess.run([peer_python(), "-c", code], capture_output=True, text=True).stdout.split()
    keys = ("python_peer", "openenv_core", "peer_uvicorn", "peer_websockets")
    return dict(zip(keys, lines, strict=False))

