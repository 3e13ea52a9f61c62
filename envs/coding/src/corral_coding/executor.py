"""Running untrusted Python: one fresh bubblewrap sandbox per execution, with limits, torn down after.

Each :meth:`Executor.run` starts ``bwrap ... python3 -s -S -B -c HARNESS`` (:mod:`corral_coding.harness`) with
the system's own Python. The sandbox has new user, pid, network, ipc, uts and cgroup namespaces (so no
network at all: not even the host's loopback), the system directories read-only and nothing else of the
host (no home, no checkout, no virtual environment), a private tmpfs at ``/tmp`` as its working directory,
no capabilities, and ``--die-with-parent``. The harness lowers RLIMIT_CPU, RLIMIT_AS, RLIMIT_NPROC,
RLIMIT_FSIZE and RLIMIT_NOFILE before the submission runs; a wall-clock deadline kills the whole sandbox
(killing bubblewrap kills the sandbox's init, and the kernel then kills everything in its pid namespace).
stdout and stderr are read as they come and kept up to a cap; the rest is drained and dropped, so a flood
costs the host no memory.

RLIMIT_NPROC does not bind processes whose user is root outside the namespace, so when this process is
root, bubblewrap runs as the unprivileged ``nobody`` (uid 65534) instead; the sandbox's processes then
count against their own limit only.
"""

from __future__ import annotations

import contextlib
import errno
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
from dataclasses import dataclass, field
from importlib import resources
from typing import IO, Any

from corral.errors import RuntimeFailed, RuntimeUnavailable, UsageError
from corral.runtime.sandbox import sandbox_available, system_binds

#: Where the sandbox looks for a Python: the system's own, which needs no host path beyond SYSTEM_PATHS.
PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")
#: An unprivileged user for bubblewrap when this process is root (see the module docstring).
NOBODY = 65534
#: Time the sandbox and the interpreter take to start, not charged to the submission's time limit.
STARTUP_S = 0.5
#: What the harness may say on its channel; more means the submission flooded it.
MAX_REPORT = 4 * 1024 * 1024
_CHUNK = 65536


@dataclass(frozen=True)
class ExecLimits:
    """Limits of one execution. ``time_s`` is wall-clock time (CPU time is capped a second above it, for
    threads that would burn several cores); ``memory_mb`` caps the address space; ``processes`` counts every
    process and thread in the sandbox, its init included; ``output_kib`` caps stdout and stderr each;
    ``file_kib`` caps any one file written and ``tmp_kib`` the whole writable /tmp."""

    time_s: float = 5.0
    memory_mb: int = 256
    processes: int = 16
    output_kib: int = 64
    file_kib: int = 1024
    tmp_kib: int = 16384
    open_files: int = 64

    def rlimits(self) -> dict[str, list[int]]:
        """The harness's ``setrlimit`` calls: name -> [soft, hard]."""
        cpu = math.ceil(self.time_s) + 1
        return {
            "RLIMIT_CPU": [cpu, cpu + 1],
            "RLIMIT_AS": [self.memory_mb * 1024 * 1024] * 2,
            "RLIMIT_NPROC": [self.processes] * 2,
            "RLIMIT_FSIZE": [self.file_kib * 1024] * 2,
            "RLIMIT_NOFILE": [self.open_files] * 2,
        }


@dataclass
class Execution:
    """What one run did. ``exit_code`` is None when the time limit killed the sandbox, and ``-N`` when
    signal N ended the program. ``limit`` names the limit that stopped it, if one did (``closed`` when
    :meth:`Executor.close` did). ``events`` are the harness's reports (see :mod:`corral_coding.harness`),
    in order."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    timed_out: bool = False
    limit: str | None = None
    output_truncated: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)

    def results(self) -> dict[int, dict[str, Any]]:
        """The ``result`` events by call index (the first of each; later ones are ignored)."""
        found: dict[int, dict[str, Any]] = {}
        for event in self.events:
            index = event.get("index")
            if event.get("event") == "result" and isinstance(index, int) and index not in found:
                found[index] = event
        return found

    def event(self, kind: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e.get("event") == kind), None)


def python_path() -> str:
    """The system Python the sandbox runs, or RuntimeUnavailable saying how to get one."""
    for path in PYTHONS:
        if os.access(path, os.X_OK):
            return path
    raise RuntimeUnavailable("the coding environment runs submissions with the system's Python, and there is "
                             f"none at {' or '.join(PYTHONS)}: install Debian's 'python3' package")


def check_available() -> None:
    """Raise RuntimeUnavailable unless submissions can be sandboxed here: they never run unsandboxed."""
    ok, why = sandbox_available()
    if not ok:
        raise RuntimeUnavailable(f"the coding environment runs every submission in a bubblewrap sandbox, and "
                                 f"{why or 'bubblewrap cannot run here'}; it refuses to run code without one")
    python_path()


_probe_lock = threading.Lock()
#: None until probed; "" when the sandbox works here; else why it does not.
_probed: str | None = None


class Executor:
    """Runs submissions, one sandbox each. Thread-safe: :meth:`close` (from any thread) kills a run in
    progress and refuses later ones; it is idempotent."""

    def __init__(self) -> None:
        check_available()
        bwrap = shutil.which("bwrap")
        assert bwrap is not None  # check_available found it
        self._bwrap = bwrap
        self._python = python_path()
        self._harness = resources.files(__package__).joinpath("harness.py").read_text(encoding="utf-8")
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._probe()

    def _probe(self) -> None:
        """Run one empty submission, once per process: refuse now, not at the first step, where the sandbox
        cannot run (inside another sandbox that forbids mounting /proc, for one)."""
        global _probed
        with _probe_lock:
            if _probed is None:
                try:
                    self.run("", limits=ExecLimits(time_s=10))
                    _probed = ""
                except RuntimeFailed as exc:
                    _probed = exc.message
            if _probed:
                raise RuntimeUnavailable(f"{_probed}; the coding environment refuses to run code without its "
                                         "sandbox (serve it with runtime='subprocess' or on a host with bubblewrap)")

    def command(self, limits: ExecLimits) -> list[str]:
        """The full command line of one sandboxed run."""
        args = [self._bwrap, "--unshare-all", "--unshare-user", "--uid", "1000", "--gid", "1000", "--new-session",
                "--die-with-parent", "--cap-drop", "ALL", "--hostname", "sandbox", "--clearenv",
                *system_binds(), "--proc", "/proc", "--dev", "/dev",
                "--size", str(limits.tmp_kib * 1024), "--tmpfs", "/tmp", "--chdir", "/tmp", "--remount-ro", "/"]
        for name, value in _ENVIRONMENT.items():
            args += ["--setenv", name, value]
        return [*args, "--", self._python, "-s", "-S", "-B", "-c", self._harness]

    def run(self, code: str, *, function: str | None = None, calls: list[list[Any]] | None = None,
            limits: ExecLimits | None = None, seed: int = 0) -> Execution:
        """Run ``code`` (as ``__main__``), then call ``function`` with each argument list in ``calls``.

        ``seed`` seeds the string hashes (PYTHONHASHSEED) and the ``random`` module the code sees."""
        limits = limits or ExecLimits()
        marker = secrets.token_hex(16)
        read_end, write_end = os.pipe()
        request = {"marker": marker, "channel": write_end, "code": code, "function": function, "calls": calls or [],
                   "limits": limits.rlimits(), "seed": seed}
        command = self.command(limits)
        hash_index = command.index("--clearenv") + 1
        command[hash_index:hash_index] = ["--setenv", "PYTHONHASHSEED", str(seed % 4294967296)]
        try:
            with self._lock:
                if self._closed:
                    raise UsageError("the executor was closed; make a new environment")
                root = os.geteuid() == 0
                self._process = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    pass_fds=(write_end,), env={}, start_new_session=True, close_fds=True,
                    user=NOBODY if root else None, group=NOBODY if root else None,
                    extra_groups=[] if root else None)
                process = self._process
            os.close(write_end)
            write_end = -1
            return self._collect(process, read_end, json.dumps(request).encode(), marker, limits)
        finally:
            with self._lock:
                self._process = None
            if write_end >= 0:
                os.close(write_end)
            os.close(read_end)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            process = self._process
        if process is not None:
            _kill(process)

    def _collect(self, process: subprocess.Popen[bytes], channel: int, request: bytes, marker: str,
                 limits: ExecLimits) -> Execution:
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        cap = limits.output_kib * 1024
        out, err, report = _Capped(cap), _Capped(cap), _Capped(MAX_REPORT)
        streams = {process.stdout.fileno(): out, process.stderr.fileno(): err, channel: report}
        selector = selectors.DefaultSelector()
        for fd in streams:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        stdin_fd = process.stdin.fileno()
        os.set_blocking(stdin_fd, False)
        selector.register(stdin_fd, selectors.EVENT_WRITE)
        # The loop also ends on bubblewrap's exit (a pidfd turns readable), never on a polling wait's schedule.
        exited = os.pidfd_open(process.pid)
        selector.register(exited, selectors.EVENT_READ)
        pending = memoryview(request)
        deadline = time.monotonic() + limits.time_s + STARTUP_S
        timed_out = False
        try:
            while len(selector.get_map()) > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if timed_out:
                        break  # killed, and something still holds a pipe: stop waiting for it
                    timed_out = True
                    _kill(process)
                    deadline = time.monotonic() + 2.0
                    continue
                for key, _ in selector.select(remaining):
                    fd = int(key.fd)
                    if fd == stdin_fd:
                        pending = _feed(process.stdin, pending, selector)
                        continue
                    if fd == exited:
                        selector.unregister(fd)
                        process.wait()
                        continue
                    try:
                        chunk = os.read(fd, _CHUNK)
                    except BlockingIOError:
                        continue
                    if chunk:
                        streams[fd].add(chunk)
                    else:
                        selector.unregister(fd)
        finally:
            selector.close()
            os.close(exited)
            with contextlib.suppress(OSError):
                process.stdin.close()
            if process.poll() is None:
                _kill(process)
            process.wait()
            process.stdout.close()
            process.stderr.close()
        result = _result(process.returncode, out, err, report, marker, limits, timed_out)
        if result.event("started") is None and not self._closed:
            # The submission never ran, so this is the sandbox's failure (and nothing the submission can fake).
            raise RuntimeFailed(f"the coding sandbox failed to start (exit status {process.returncode}): "
                                f"{result.stderr.strip()[-2000:] or 'no message'}")
        if self._closed:
            result.limit = "closed"  # close() killed it, not a limit
        return result


def _result(code: int, out: _Capped, err: _Capped, report: _Capped, marker: str, limits: ExecLimits,
            timed_out: bool) -> Execution:
    events = _parse(report, marker)
    result = Execution(stdout=out.text("stdout"), stderr=err.text("stderr"), timed_out=timed_out,
                       output_truncated=out.dropped > 0 or err.dropped > 0, events=events)
    if not timed_out:
        # bubblewrap exits 128 + N when the program was killed by signal N.
        result.exit_code = -(code - 128) if 128 < code < 128 + 65 else code
    result.limit = _limit_hit(result, limits)
    return result


_ENVIRONMENT = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


class _Capped:
    """Bytes kept up to ``cap``; the rest counted and dropped."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        self.data += chunk[:max(room, 0)]
        self.dropped += max(len(chunk) - max(room, 0), 0)

    def text(self, name: str) -> str:
        text = self.data.decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n[{name} truncated at {self.cap // 1024} KiB: {self.dropped} more bytes dropped]\n"
        return text


def _feed(stdin: IO[bytes], pending: memoryview, selector: selectors.BaseSelector) -> memoryview:
    try:
        written = os.write(stdin.fileno(), pending)
    except BlockingIOError:
        return pending
    except OSError:  # the program went away before reading its request
        written = len(pending)
    pending = pending[written:]
    if not pending:
        selector.unregister(stdin.fileno())
        stdin.close()
    return pending


def _parse(report: _Capped, marker: str) -> list[dict[str, Any]]:
    """The harness's events: the lines that carry this run's marker (anything else on the channel was
    written by the submission, and is ignored)."""
    events: list[dict[str, Any]] = []
    prefix = marker.encode() + b" "
    for line in bytes(report.data).splitlines():
        if line.startswith(prefix):
            with contextlib.suppress(ValueError):
                event = json.loads(line[len(prefix):])
                if isinstance(event, dict):
                    events.append(event)
    return events


_ERRNO_LIMITS = {"EFBIG": "file size limit {file} KiB", "ENOSPC": "disk limit {tmp} KiB (all of /tmp)",
                 "EAGAIN": "process limit {processes}", "EMFILE": "open file limit {files}"}


def _limit_hit(result: Execution, limits: ExecLimits) -> str | None:
    if result.timed_out:
        return f"time limit {limits.time_s:g} s"
    if result.exit_code in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"CPU time limit {math.ceil(limits.time_s) + 1} s"
    values = {"file": limits.file_kib, "tmp": limits.tmp_kib, "processes": limits.processes,
              "files": limits.open_files}
    for event in result.events:
        if event.get("error") == "MemoryError":
            return f"memory limit {limits.memory_mb} MiB"
        number = event.get("errno")
        if isinstance(number, int) and errno.errorcode.get(number) in _ERRNO_LIMITS:
            return _ERRNO_LIMITS[errno.errorcode[number]].format(**values)
    tail = result.stderr.rstrip().rpartition("\n")[2]
    if tail.startswith("MemoryError"):
        return f"memory limit {limits.memory_mb} MiB"
    if result.output_truncated:
        return f"output limit {limits.output_kib} KiB (the rest was dropped)"
    return None


def _kill(process: subprocess.Popen[bytes]) -> None:
    # bubblewrap's sandbox init dies with it (--die-with-parent), and the kernel kills the rest of its pid
    # namespace; the process group holds bubblewrap itself.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
