"""The per-execution sandbox: one bubblewrap sandbox for every submission, gone when the run ends.

What a run gets: fresh user, pid, network, ipc, uts and cgroup namespaces (no network at all: only a
loopback of its own), no capabilities and no way to make more user namespaces; the host's system
directories read-only (:func:`corral.runtime.sandbox.system_binds`: ``/usr`` and the like, not the host's
home, virtual environments or this package), a private ``/proc`` and ``/dev``, and a small private tmpfs at
``/tmp``, its working directory; a fixed environment. Its one process runs as uid 1000 of its own user
namespace, which maps to an unprivileged host user: this process's own, or ``nobody`` when this process is
root (so that the process limit holds: the kernel does not count processes of root). Limits:

- time: a wall-clock deadline from the moment the code starts (the whole sandbox is killed at once) and
  RLIMIT_CPU as a backstop;
- memory: RLIMIT_AS per process, and a memory cgroup over the whole sandbox where this process may create one;
- processes: RLIMIT_NPROC (counted per user namespace, so only the sandbox's own), and a pids cgroup where
  available;
- files: RLIMIT_FSIZE, RLIMIT_NOFILE, and the size of ``/tmp``;
- output: stdout and stderr are read as they come and kept up to a cap; the rest is counted and dropped,
  so a flood costs no host memory.

Without bubblewrap, or where this machine refuses its namespaces, :class:`SandboxUnavailable` says why:
code is never run outside the sandbox.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from corral.runtime import cgroups
from corral.runtime.sandbox import sandbox_available, system_binds

#: The harness that runs inside (its source text is passed with ``-c``; it is never imported here).
HARNESS = Path(__file__).with_name("_harness.py")
#: Environment variable naming the Python to run submissions with (default: the system's python3).
PYTHON_VARIABLE = "CORRAL_CODING_PYTHON"
#: Where the system's Python 3 usually is; the first that exists is used.
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")
#: The host user a sandbox maps to when this process is root.
NOBODY = 65534
#: Seconds the sandbox may take to start (bubblewrap, the interpreter) before the code's clock starts.
START_TIMEOUT_S = 10.0
#: Most bytes of result records read from one run (the harness's own records are far smaller).
MAX_RECORD_BYTES = 8 * 1024 * 1024
#: Seconds to wait for the pipes to close once the sandbox has been killed.
DRAIN_AFTER_KILL_S = 2.0


class SandboxUnavailable(RuntimeError):
    """This machine cannot run the per-execution sandbox; the message says why and what to install."""


@dataclass(frozen=True)
class Limits:
    """The limits of one run. ``time_s`` is wall-clock seconds from the moment the code starts."""

    time_s: float = 2.0
    memory_mb: int = 256
    processes: int = 16
    output_bytes: int = 64 * 1024
    file_mb: int = 16
    open_files: int = 64

    def rlimits(self) -> dict[str, tuple[int, int]]:
        """(soft, hard) per rlimit, as the harness applies them before the code runs."""
        cpu = max(1, math.ceil(self.time_s))
        return {
            "RLIMIT_CPU": (cpu, cpu + 1),
            "RLIMIT_AS": (self.memory_mb << 20, self.memory_mb << 20),
            # The harness and the sandbox's init count too.
            "RLIMIT_NPROC": (self.processes + 2, self.processes + 2),
            "RLIMIT_FSIZE": (self.file_mb << 20, self.file_mb << 20),
            "RLIMIT_NOFILE": (self.open_files, self.open_files),
            "RLIMIT_CORE": (0, 0),
        }


@dataclass
class Execution:
    """What one run did. ``records`` are the harness's result records, in order (the host judges them)."""

    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    #: The code's exit status; negative: killed by that signal. None when it never started.
    exit_code: int | None = None
    timed_out: bool = False
    #: Which limit stopped or hurt the run, in words ("time limit 2 s"), or None.
    limit: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    #: Wall-clock seconds from the code's start to its end.
    duration_s: float = 0.0
    #: The run was stopped by :meth:`Executor.kill` (the environment closed).
    killed: bool = False


@cache
def _bwrap_options() -> tuple[str, ...]:
    """Options of this bubblewrap that only newer versions have, when it has them."""
    try:
        helptext = subprocess.run([shutil.which("bwrap") or "bwrap", "--help"], capture_output=True, text=True,
                                  timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(option for option in ("--disable-userns",) if option in helptext)


def system_python() -> str:
    """The Python 3 that runs submissions: ``$CORRAL_CODING_PYTHON``, else the system's ``python3``."""
    chosen = os.environ.get(PYTHON_VARIABLE)
    if chosen:
        return chosen
    for path in SYSTEM_PYTHONS:
        if os.access(path, os.X_OK):
            return path
    raise SandboxUnavailable(f"no system Python 3 at {' or '.join(SYSTEM_PYTHONS)}: install Debian's python3 "
                             f"package, or set {PYTHON_VARIABLE} to an interpreter under /usr")


class Executor:
    """Runs submissions, one at a time, each in a fresh sandbox. :meth:`kill` (from any thread) stops the
    current run at once; :meth:`close` also refuses later ones."""

    def __init__(self, python: str | None = None) -> None:
        self.python = python
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._group: cgroups.Group | None = None
        self._killed = False
        self._closed = False

    def run(self, code: str, entry_point: str, calls: list[str], limits: Limits, *,
            hash_seed: int = 0) -> Execution:
        """Run ``code``, then call ``entry_point`` on each JSON-encoded argument list of ``calls``.

        SandboxUnavailable when the sandbox cannot be made here (nothing ran).
        """
        ok, why = sandbox_available()
        if not ok:
            raise SandboxUnavailable(f"the coding environment runs code only inside bubblewrap, and {why}")
        python = self.python or system_python()
        marker = secrets.token_hex(16)
        read_fd, write_fd = os.pipe()
        job = json.dumps({"marker": marker, "fd": write_fd, "code": code, "entry_point": entry_point,
                          "calls": calls, "rlimits": limits.rlimits()}).encode()
        group = self._cgroup(limits)
        try:
            with self._lock:
                if self._closed:
                    raise SandboxUnavailable("the executor is closed")
                self._killed = False
                self._group = group
                try:
                    process = self._process = subprocess.Popen(
                        self._argv(python, limits, group, hash_seed), stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(write_fd,), cwd="/",
                        env=_host_env(), start_new_session=True)
                finally:
                    os.close(write_fd)
            try:
                result = self._collect(process, job, read_fd, marker, limits)
            finally:
                _kill(process)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(5)
            if result.started:
                result.exit_code = _exit_code(process.returncode)
            self._explain(result, limits, group)
            return result
        finally:
            os.close(read_fd)
            with self._lock:
                self._process = None
                self._group = None
            if group is not None:
                group.remove()

    def kill(self) -> None:
        """Stop the current run now (it comes back with ``killed``); the executor stays usable."""
        with self._lock:
            self._killed = True
            if self._process is not None:
                _kill(self._process)
            if self._group is not None:
                self._group.kill()

    def close(self) -> None:
        """Kill any current run and refuse new ones. Idempotent."""
        with self._lock:
            self._closed = True
        self.kill()

    # -- the sandbox -----------------------------------------------------------------------------------

    def _argv(self, python: str, limits: Limits, group: cgroups.Group | None, hash_seed: int) -> list[str]:
        bwrap = shutil.which("bwrap")
        if bwrap is None:  # sandbox_available() said yes a moment ago; be sure all the same
            raise SandboxUnavailable("bubblewrap (bwrap) is not on PATH")
        argv = [bwrap, "--unshare-all", "--unshare-user", "--uid", "1000", "--gid", "1000", "--new-session",
                "--die-with-parent", "--cap-drop", "ALL", *_bwrap_options(), "--hostname", "sandbox",
                *system_binds(), *_python_binds(python), *_hidden(),
                "--proc", "/proc", "--dev", "/dev", "--size", str(limits.file_mb << 20), "--tmpfs", "/tmp",
                "--chdir", "/tmp", "--remount-ro", "/", "--clearenv"]
        for key, value in {**SANDBOX_ENV, "PYTHONHASHSEED": str(hash_seed % 2**32)}.items():
            argv += ["--setenv", key, value]
        argv += ["--", python, "-S", "-s", "-B", "-c", _harness()]
        if os.geteuid() != 0:
            return argv
        # Root: join the run's cgroups, become nobody, and only then start bubblewrap, so that every process
        # of the sandbox is counted from its first fork.
        procs = ":".join(group.procs) if group is not None else ""
        return [python, "-S", "-s", "-B", "-c", _SHIM, procs, str(NOBODY), *argv]

    @staticmethod
    def _cgroup(limits: Limits) -> cgroups.Group | None:
        if os.geteuid() != 0:
            return None
        # Memory: the code's own limit, plus the sandbox's tmpfs and room for bubblewrap. Tasks: the code's
        # processes and threads, the harness, the sandbox's init and bubblewrap.
        return cgroups.create(f"coding-{uuid.uuid4().hex[:12]}",
                              memory_bytes=(limits.memory_mb + limits.file_mb + 32) << 20,
                              pids=limits.processes + 3, cpus=None)

    # -- reading a run ---------------------------------------------------------------------------------

    def _collect(self, process: subprocess.Popen[bytes], job: bytes, channel: int, marker: str,
                 limits: Limits) -> Execution:
        """Feed the job, read stdout, stderr and the result channel until they close or time is up."""
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        out, err, records = _Capped(limits.output_bytes), _Capped(limits.output_bytes), _Capped(MAX_RECORD_BYTES)
        readers = {process.stdout.fileno(): out, process.stderr.fileno(): err, channel: records}
        stdin = process.stdin.fileno()
        pending = memoryview(job)
        selector = selectors.DefaultSelector()
        for fd in (*readers, stdin):
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_WRITE if fd == stdin else selectors.EVENT_READ)
        start_line = marker.encode() + b' {"kind": "start"}'
        result = Execution()
        started: float | None = None
        deadline = time.monotonic() + START_TIMEOUT_S
        stopped: float | None = None
        try:
            while readers:
                now = time.monotonic()
                if stopped is None and (now >= deadline or self._killed):
                    result.killed = self._killed
                    result.timed_out = not self._killed and started is not None
                    _kill(process)
                    stopped = now
                if stopped is not None and now - stopped > DRAIN_AFTER_KILL_S:
                    break
                wait = (deadline if stopped is None else stopped + DRAIN_AFTER_KILL_S) - now
                for key, _ in selector.select(max(0.0, min(wait, 0.1))):
                    fd = int(key.fd)
                    if fd == stdin:
                        with contextlib.suppress(BlockingIOError):
                            try:
                                pending = pending[os.write(stdin, pending[:65536]):]
                            except BrokenPipeError:
                                pending = pending[:0]
                        if not pending:
                            selector.unregister(stdin)
                            process.stdin.close()
                        continue
                    try:
                        chunk = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        selector.unregister(fd)
                        del readers[fd]
                        continue
                    readers[fd].add(chunk)
                    if started is None and fd == channel and start_line in records.data:
                        started = time.monotonic()
                        deadline = started + limits.time_s
        finally:
            selector.close()
            with contextlib.suppress(OSError):
                process.stdin.close()
        end = stopped if stopped is not None else time.monotonic()
        result.started = started is not None
        result.duration_s = round(end - started, 3) if started is not None else 0.0
        result.stdout, result.stdout_truncated = out.text()
        result.stderr, result.stderr_truncated = err.text()
        result.records = _records(records.data, marker)
        return result

    @staticmethod
    def _explain(result: Execution, limits: Limits, group: cgroups.Group | None) -> None:
        """Name the limit that stopped or hurt the run, if one did; a sandbox that never started is an error."""
        if not result.started:
            if result.killed:
                return
            problem = result.stderr.strip()[-2000:] or "no output"
            raise SandboxUnavailable(f"the sandbox did not start ({problem})")
        code = result.exit_code
        if result.timed_out or code == -signal.SIGXCPU:
            result.timed_out = True
            result.limit = f"time limit {limits.time_s:g} s"
        elif (any(record.get("kind") == "memory" for record in result.records)
              or (group is not None and group.memory_events_oom()) or _mentions(result.stderr, "MemoryError")):
            result.limit = f"memory limit {limits.memory_mb} MiB"
        elif code == -signal.SIGKILL and not result.killed:
            # Past RLIMIT_CPU's hard limit (its soft one, SIGXCPU, was ignored).
            result.timed_out = True
            result.limit = f"time limit {limits.time_s:g} s"
        elif (_pids_hit(group) if group is not None
              else _mentions(result.stderr, "Resource temporarily unavailable")):
            result.limit = f"process limit {limits.processes}"
        elif code == -signal.SIGXFSZ or any(_mentions(result.stderr, text)
                                           for text in ("File too large", "No space left on device")):
            result.limit = f"file size limit {limits.file_mb} MiB"
        elif result.stdout_truncated or result.stderr_truncated:
            result.limit = f"output limit {_size(limits.output_bytes)}"


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL bubblewrap's process group. The sandbox dies with it: its init has --die-with-parent, and the
    kernel ends a pid namespace's every process when its init goes."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            process.kill()


@cache
def _harness() -> str:
    return HARNESS.read_text(encoding="utf-8")


def _host_env() -> dict[str, str]:
    """The environment bubblewrap itself starts with (the sandbox's own is set with --clearenv/--setenv)."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


# The first process when this one is root: join the run's cgroups, drop to an unprivileged user, start
# bubblewrap. argv: procs files (':'-separated), uid, then bubblewrap's command line.
_SHIM = """
import os, sys
for path in filter(None, sys.argv[1].split(":")):
    with open(path, "w") as f:
        f.write(str(os.getpid()))
uid = int(sys.argv[2])
os.setgroups([])
os.setgid(uid)
os.setuid(uid)
os.execv(sys.argv[3], sys.argv[3:])
"""


def _python_binds(python: str) -> list[str]:
    """Show a Python installed outside the system directories (read-only) so it can run inside."""
    real = os.path.realpath(python)
    if real.startswith(("/usr/", "/bin/", "/lib/")):
        return []
    prefix = os.path.dirname(os.path.dirname(real))
    return ["--ro-bind", prefix, prefix]


def _hidden() -> list[str]:
    """This package's folder, covered by an empty tmpfs where it lies under a folder the sandbox shows (an
    install into the system Python): its task file holds the expected answers."""
    package = str(Path(__file__).resolve().parent)
    shown = [path for path in ("/usr", "/bin", "/lib", "/lib64", "/sbin") if package.startswith(path + "/")]
    return ["--tmpfs", package] if shown else []


class _Capped:
    """Bytes kept up to ``limit``; the rest only counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - max(room, 0))

    def text(self) -> tuple[str, bool]:
        text = self.data.decode("utf-8", errors="replace")
        if not self.dropped:
            return text, False
        return text + f"\n[output truncated: {self.dropped} more bytes not shown]\n", True


def _records(data: bytearray, marker: str) -> list[dict[str, Any]]:
    """The well-formed result records (lines that start with the run's marker), in order."""
    prefix = marker.encode() + b" "
    found = []
    for line in bytes(data).split(b"\n"):
        if not line.startswith(prefix):
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line[len(prefix):])
            if isinstance(record, dict):
                found.append(record)
    return found


def _exit_code(returncode: int | None) -> int | None:
    """The code's status from bubblewrap's: bubblewrap exits 128+N when its command died of signal N."""
    if returncode is None:
        return None
    if returncode > 128:
        return -(returncode - 128)
    return returncode


def _pids_hit(group: cgroups.Group) -> bool:
    for directory in group.dirs:
        with contextlib.suppress(OSError, ValueError):
            for line in (directory / "pids.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "max" and int(value) > 0:
                    return True
    return False


def _mentions(text: str, needle: str) -> bool:
    return needle in text[-4000:]


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n >> 10} KiB" if n % 1024 == 0 else f"{n} bytes"


__all__ = ["Execution", "Executor", "Limits", "SandboxUnavailable", "system_python"]
