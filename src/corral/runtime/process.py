"""Servers as child processes on a Unix socket: the subprocess tier, and the base of the sandbox tier."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar

import orjson

from ..errors import RuntimeFailed
from .base import Runtime, Server, ServerSpec
from .lease import lease_fd

#: The child's spec file and socket, relative to the server's private folder.
SPEC_FILE = "spec.json"
SOCKET = "server.sock"
LOG = "server.log"


def runtime_dir() -> Path:
    """Where servers' private folders go: ``$CORRAL_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/corral``, else /tmp."""
    base = os.environ.get("CORRAL_RUNTIME_DIR") or (
        os.path.join(os.environ["XDG_RUNTIME_DIR"], "corral") if os.environ.get("XDG_RUNTIME_DIR") else None
    )
    path = Path(base) if base else Path(tempfile.gettempdir())
    path.mkdir(parents=True, exist_ok=True)
    return path


class _Spawner:
    """One long-lived thread that starts every child process.

    A child asking for ``PR_SET_PDEATHSIG`` (bubblewrap's ``--die-with-parent``) is killed when the *thread*
    that forked it exits, not the process; starting children from this thread ties their life to the owner
    process, whichever thread asked for them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]] = []
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def popen(self, make: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        future: Future[subprocess.Popen[bytes]] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="corral-spawner", daemon=True)
                self._thread.start()
            self._queue.append((make, future))
            self._wake.notify()
        return future.result()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._wake.wait()
                make, future = self._queue.pop(0)
            try:
                future.set_result(make())
            except BaseException as exc:
                future.set_exception(exc)


_spawner = _Spawner()


def describe_exit(returncode: int | None) -> str | None:
    if returncode is None:
        return None
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with status {returncode}"


class ProcessServer(Server):
    """A server process (and its process group) with a private folder holding its socket and log."""

    runtime = "subprocess"

    def __init__(self, spec: ServerSpec, folder: Path, socket_path: str, grace_s: float) -> None:
        super().__init__(spec)
        self.folder = folder
        self.socket_path = socket_path
        self.grace_s = grace_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_reason(self) -> str | None:
        if self.process is None:
            return "it was never started"
        return describe_exit(self.process.poll())

    def spawn(self, argv: Sequence[str], env: dict[str, str], pass_fds: Sequence[int] = (), **options: Any) -> None:
        with open(self.folder / LOG, "ab") as log:
            self.process = _spawner.popen(lambda: subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, pass_fds=tuple(pass_fds), close_fds=True, **options,
            ))

    def _probe(self) -> None:
        if not os.path.exists(self.socket_path):
            raise RuntimeFailed("the server's socket does not exist yet")
        super()._probe()

    def _diagnostics(self) -> str:
        log = self.log_tail()
        return f"; the server's log ends with:\n{log}" if log else ""

    def log_tail(self, limit: int = 2000) -> str:
        """The last ``limit`` characters of the server's output (secrets are never written there)."""
        try:
            data = (self.folder / LOG).read_bytes()[-limit:]
        except OSError:
            return ""
        return data.decode("utf-8", "replace").strip()

    def _stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            self._signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(self.grace_s)
        if process is not None:
            self._signal(signal.SIGKILL)  # anything left in the group, even after the leader exited
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        self._cleanup()

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def _cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class SubprocessRuntime(Runtime):
    """Each server is a child process of this one, listening on a Unix socket in a private folder.

    No isolation beyond a process boundary: use it for trusted environments and fast local work. The
    server stops with its owner (see :mod:`corral.runtime.lease`).
    """

    name: ClassVar[str] = "subprocess"

    def __init__(self, *, python: str | None = None, grace_s: float = 2.0) -> None:
        self.python = python or sys.executable
        self.grace_s = grace_s

    def _launch(self, spec: ServerSpec) -> Server:
        folder = Path(tempfile.mkdtemp(prefix="corral-", dir=runtime_dir()))
        server = ProcessServer(spec, folder, str(folder / SOCKET), self.grace_s)
        try:
            fd = lease_fd()
            write_spec(folder / SPEC_FILE, spec, uds=server.socket_path, lease=fd, python_path=sys.path)
            env = dict(os.environ)
            env.update(spec.environment)
            server.spawn([self.python, "-m", "corral.runtime.child", str(folder / SPEC_FILE)], env, (fd,))
        except BaseException:
            server.stop()
            raise
        return server


def write_spec(path: Path, spec: ServerSpec, *, uds: str, lease: int | None, python_path: Sequence[str],
               extra: dict[str, Any] | None = None) -> None:
    """Write the child's spec file, readable by its owner only (it carries the token and secrets)."""
    document: dict[str, Any] = {
        "env": spec.env,
        "uds": uds,
        "config": dataclasses.asdict(spec.config),
        "secrets": dict(spec.secrets),
        "lease_fd": lease,
        "python_path": [p for p in python_path if p],
        **(extra or {}),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(orjson.dumps(document))
