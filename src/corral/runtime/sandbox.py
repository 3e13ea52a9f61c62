"""The sandbox tier: each server in its own bubblewrap sandbox.

What a sandboxed server gets: new user, pid, network, ipc, uts and cgroup namespaces (so no network at all,
not even the host's loopback); a read-only view of the system directories and of the Python it runs on; a
private writable tmpfs at /tmp and its own /dev; its own folder at /run/corral (socket, spec) and nothing
else of the host; no capabilities; rlimits (CPU seconds, address space, open files, processes); and, where
the machine allows, a cgroup with memory, pids and CPU limits. Inside, the server runs as uid 1000 of its
own user namespace; the process limit counts tasks per user namespace, so it counts only the sandbox's own.

Two ways to get there. By default a server is forked from a zygote (:mod:`corral.runtime.zygote`): one
bubblewrap sandbox per owner process that has imported the server stack once, and confines each forked
server in fresh namespaces of its own, nested in the zygote's. Otherwise (``zygote=False``, or where the
machine refuses nested user namespaces) each server is a new ``bwrap ... python -m corral.runtime.child``.
The guarantees above hold either way; :mod:`corral.runtime.zygote` says what little differs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..errors import RuntimeFailed, RuntimeUnavailable
from . import cgroups
from .base import Limits, Runtime, Server, ServerSpec
from .lease import lease_fd
from .process import LOG, SOCKET, SPEC_FILE, ProcessServer, describe_exit, runtime_dir, write_spec
from .zygote import Zygote, ZygoteChild, ZygoteDied, zygote_for
from .zygote.forkserver import DEV_STAGE, FULL_PROC, INSIDE, SERVERS

#: System paths shown read-only inside (when they exist on the host).
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/ld.so.cache", "/etc/localtime",
                "/etc/alternatives")

_SHIM = r"""
for procs in $CORRAL_CGROUP_PROCS; do echo $$ > "$procs" || exit 97; done
unset CORRAL_CGROUP_PROCS
[ -n "$CORRAL_LIMIT_CPU" ] && { ulimit -t "$CORRAL_LIMIT_CPU" || exit 98; }
[ -n "$CORRAL_LIMIT_AS" ] && { ulimit -v "$CORRAL_LIMIT_AS" || exit 98; }
[ -n "$CORRAL_LIMIT_NOFILE" ] && { ulimit -n "$CORRAL_LIMIT_NOFILE" || exit 98; }
[ -n "$CORRAL_LIMIT_NPROC" ] && { ulimit -p "$CORRAL_LIMIT_NPROC" || exit 98; }
unset CORRAL_LIMIT_CPU CORRAL_LIMIT_AS CORRAL_LIMIT_NOFILE CORRAL_LIMIT_NPROC
exec "$@"
"""

def bwrap_path() -> str:
    """The bubblewrap binary, or RuntimeUnavailable saying how to get it."""
    path = shutil.which("bwrap")
    if path is None:
        raise RuntimeUnavailable("the sandbox runtime needs bubblewrap: install Debian's 'bubblewrap' package "
                                 "(apt-get install bubblewrap), or use runtime='subprocess'")
    return path


_probe_result: tuple[bool, str] | None = None


def sandbox_available() -> tuple[bool, str]:
    """Whether this machine can create the sandbox's namespaces, and if not, why (checked once)."""
    global _probe_result
    if _probe_result is None:
        try:
            binary = bwrap_path()
        except RuntimeUnavailable as exc:
            _probe_result = (False, exc.message)
            return _probe_result
        command = [binary, "--unshare-all", "--ro-bind", "/", "/", "--", "/bin/true"]
        try:
            run = subprocess.run(command, capture_output=True, timeout=10, check=False)
            ok = run.returncode == 0
            why = run.stderr.decode(errors="replace").strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            ok, why = False, str(exc)
        _probe_result = (ok, "" if ok else f"bubblewrap cannot create namespaces here: {why}")
    return _probe_result


class SandboxServer(ProcessServer):
    """A server in its own bubblewrap sandbox."""

    runtime = "sandbox"

    def __init__(self, spec: ServerSpec, folder: Path, socket_path: str, grace_s: float) -> None:
        super().__init__(spec, folder, socket_path, grace_s)
        self.cgroup: cgroups.Group | None = None

    def exit_reason(self) -> str | None:
        if self.process is None or self.process.poll() is None:
            return super().exit_reason()
        return self._explain(self.process.returncode)

    def _explain(self, code: int) -> str:
        # bubblewrap exits with 128 + N when the sandboxed server was killed by signal N.
        reason = describe_exit(-(code - 128) if code > 128 else code) or ""
        limits = self.spec.limits
        if self.cgroup is not None and self.cgroup.memory_events_oom():
            reason += f": it went past its memory limit ({limits.memory_mb} MiB)"
        elif code == 128 + signal.SIGKILL and limits.cpu_s:
            reason += f" (the kernel's answer to a server past its CPU-time limit of {limits.cpu_s} s)"
        elif code == 128 + signal.SIGXCPU:
            reason += f": it went past its CPU-time limit ({limits.cpu_s} s)"
        return reason

    def _cleanup(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
        super()._cleanup()


class ZygoteServer(SandboxServer):
    """A sandboxed server forked from ``zygote``. ``pid`` is its init (pid 1 of its own pid namespace, and
    leader of its process group), in this process's pid namespace."""

    def __init__(self, spec: ServerSpec, folder: Path, socket_path: str, grace_s: float, zygote: Zygote) -> None:
        super().__init__(spec, folder, socket_path, grace_s)
        self.zygote = zygote
        self.child: ZygoteChild | None = None

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child else None

    def alive(self) -> bool:
        return self.child is not None and self.child.poll() is None

    def exit_reason(self) -> str | None:
        if self.child is None:
            return "it was never started"
        code = self.child.poll()
        if code is None:
            return None
        if self.child.lost:
            return "its sandbox zygote died, and every server forked from it with it"
        return self._explain(code)

    def _probe(self) -> None:
        # A forked server listens some 10-30 ms after the fork: watch for its socket closely rather than at
        # the pace of wait_ready's back-off, which would add up to half that again.
        deadline = time.monotonic() + 0.02
        while not os.path.exists(self.socket_path) and time.monotonic() < deadline and self.alive():
            time.sleep(0.001)
        super()._probe()

    def _stop(self) -> None:
        # Killing init kills everything in its pid namespace; nothing inside can leave that namespace.
        if self.child is not None:
            self.child.kill()
            self.child.wait(5)
            self.child.close()
        self._cleanup()


class SandboxRuntime(Runtime):
    """Servers in bubblewrap sandboxes (see the module docstring for what is isolated and limited).

    ``zygote``: fork servers from a zygote that has imported the server stack (fast cold starts); where this
    machine cannot run one, fall back to a bubblewrap sandbox per server, saying why once in the log.
    ``preload``: modules the zygote imports too (an environment's module, a heavy library), so servers
    start without importing them; their import-time state is then shared by every server forked from it.
    """

    name: ClassVar[str] = "sandbox"

    def __init__(self, *, python: str | None = None, grace_s: float = 0.5, use_cgroups: bool = True,
                 zygote: bool = True, preload: Sequence[str] = ()) -> None:
        self.python = python or sys.executable
        self.grace_s = grace_s
        self.use_cgroups = use_cgroups
        self.zygote = zygote
        self.preload = tuple(preload)

    def uses_zygote(self) -> bool:
        """Whether servers are forked from a zygote (starting it if needed)."""
        return self._zygote() is not None

    def _zygote(self) -> Zygote | None:
        if not self.zygote or not sandbox_available()[0]:
            return None
        key = (self.python, tuple(_python_path()), self.preload, str(runtime_dir()))
        binary = bwrap_path()
        return zygote_for(key, lambda: Zygote(
            lambda servers: [binary, *zygote_bwrap_arguments(servers), "--", inside(self.python), "-S", "-m",
                             "corral.runtime.zygote"],
            _environment({}), self.preload))

    def _launch(self, spec: ServerSpec) -> Server:
        binary = bwrap_path()
        ok, why = sandbox_available()
        if not ok:
            raise RuntimeUnavailable(f"{why}; use runtime='subprocess' (no isolation) or 'docker'")
        for attempt in range(2):
            zygote = self._zygote()
            if zygote is None:
                break
            try:
                return self._fork(spec, zygote)
            except ZygoteDied:
                if attempt:
                    raise
        return self._bwrap(spec, binary)

    def _fork(self, spec: ServerSpec, zygote: Zygote) -> Server:
        folder = Path(tempfile.mkdtemp(prefix="corral-sbx-", dir=zygote.servers))
        server = ZygoteServer(spec, folder, str(folder / SOCKET), self.grace_s, zygote)
        try:
            (folder / LOG).touch()
            limits = spec.limits
            write_spec(folder / SPEC_FILE, spec, uds=f"{INSIDE}/{SOCKET}", lease=None, python_path=_python_path(),
                       extra={"sandbox": {"environ": _environment(spec.environment), "rlimits": _rlimits(limits)}})
            server.cgroup = self._cgroup(folder, limits)
            server.child = zygote.fork(folder.name, (limits.tmp_mb or 0) * 1024 * 1024,
                                       timeout=max(spec.ready_timeout_s, 1.0))
            if server.cgroup is not None:
                for procs in server.cgroup.procs:
                    try:
                        Path(procs).write_text(str(server.child.pid))
                    except OSError as exc:
                        raise RuntimeFailed(f"could not place the sandboxed server in its cgroup: {exc}") from exc
            server.child.go()
        except BaseException:
            server.stop()
            raise
        return server

    def _bwrap(self, spec: ServerSpec, binary: str) -> Server:
        folder = Path(tempfile.mkdtemp(prefix="corral-sbx-", dir=runtime_dir()))
        server = SandboxServer(spec, folder, str(folder / SOCKET), self.grace_s)
        try:
            fd = lease_fd()
            write_spec(folder / SPEC_FILE, spec, uds=f"{INSIDE}/{SOCKET}", lease=fd,
                       python_path=_python_path())
            limits = spec.limits
            server.cgroup = self._cgroup(folder, limits)
            argv = ["/bin/sh", "-c", _SHIM, "corral-sandbox", binary, *bwrap_arguments(folder, limits),
                    "--", inside(self.python), "-S", "-m", "corral.runtime.child", f"{INSIDE}/{SPEC_FILE}"]
            server.spawn(argv, _shim_environment(spec, limits, server.cgroup), (fd,))
        except BaseException:
            server.stop()
            raise
        return server

    def _cgroup(self, folder: Path, limits: Limits) -> cgroups.Group | None:
        if not self.use_cgroups:
            return None
        return cgroups.create(folder.name, memory_bytes=(limits.memory_mb or 0) * 1024 * 1024 or None,
                              pids=limits.processes, cpus=limits.cpus)


def bwrap_arguments(folder: Path, limits: Limits) -> list[str]:
    """bubblewrap's options for one server's sandbox (everything but the command)."""
    # --die-with-parent: killing bubblewrap (a stop, or a crash of this process) kills the whole sandbox.
    args = ["--unshare-all", "--unshare-user", "--uid", "1000", "--gid", "1000", "--new-session",
            "--die-with-parent", "--cap-drop", "ALL", "--hostname", "corral-sandbox", *_read_only_binds()]
    args += ["--proc", "/proc", "--dev", "/dev"]
    if limits.tmp_mb:
        args += ["--size", str(limits.tmp_mb * 1024 * 1024)]
    args += ["--tmpfs", "/tmp", "--bind", str(folder), INSIDE, "--chdir", "/tmp", "--remount-ro", "/"]
    return args


def zygote_bwrap_arguments(servers: Path) -> list[str]:
    """bubblewrap's options for a zygote's sandbox: a plain sandbox's, plus every server folder at SERVERS
    and the mount points the zygote needs. The zygote starts as uid 0 of bubblewrap's user namespace (so
    bubblewrap nests no second one, which would leave it no rights over its mount namespace) with
    CAP_SYS_ADMIN and CAP_SETFCAP over its own namespaces; it keeps them only until it has mounted FULL_PROC
    and entered a user namespace of its own as uid 1000."""
    args = ["--unshare-all", "--unshare-user", "--uid", "0", "--gid", "0", "--new-session", "--die-with-parent",
            "--cap-drop", "ALL", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETFCAP",
            "--hostname", "corral-sandbox", *_read_only_binds()]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", INSIDE, "--dir", FULL_PROC,
             "--dir", DEV_STAGE, "--bind", str(servers), SERVERS, "--chdir", "/tmp", "--remount-ro", "/"]
    return args


def system_binds() -> list[str]:
    """bubblewrap options showing :data:`SYSTEM_PATHS` read-only (symlinks as the same symlinks), and no
    other host path: the base of any sandbox that runs the system's own programs."""
    args: list[str] = []
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def _read_only_binds() -> list[str]:
    args = system_binds()
    for path in _python_roots():
        args += ["--ro-bind", path, inside(path)]
    return args


#: Host folders under /tmp (a checkout or a virtual environment there) appear here inside: the sandbox's
#: /tmp is a tmpfs of its own.
HOST_TMP = "/.corral-host-tmp"


def inside(path: str) -> str:
    """Where a host path that the sandbox is shown appears inside it."""
    return HOST_TMP + path[len("/tmp"):] if path == "/tmp" or path.startswith("/tmp/") else path


def _host_python_path() -> list[str]:
    """The import path the server needs: this interpreter's, minus the current directory."""
    return [p for p in sys.path if p and os.path.isabs(p) and os.path.exists(p)]


def _python_path() -> list[str]:
    """:func:`_host_python_path` as the sandbox sees it."""
    return [inside(p) for p in _host_python_path()]


def _python_roots() -> list[str]:
    """Folders to show read-only so the same interpreter and packages run inside: the Python install, the
    virtual environment, and every import path entry outside them (editable installs, source trees)."""
    roots: list[str] = []
    candidates = [sys.base_prefix, sys.prefix, sysconfig.get_paths()["stdlib"], *_host_python_path(),
                  os.path.dirname(os.path.realpath(sys.executable))]
    for candidate in sorted({os.path.realpath(c) for c in candidates}, key=len):
        if candidate.startswith(("/usr/", "/proc", "/dev")) or candidate in ("/usr", "/tmp"):
            continue
        if not any(candidate == r or candidate.startswith(r + "/") for r in roots):
            roots.append(candidate)
    return roots


def _environment(extra: Mapping[str, str]) -> dict[str, str]:
    """A sandboxed server's environment variables: a small fixed set, then ``extra``."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "MALLOC_ARENA_MAX": "2",
        # -S skips site (and its .pth files); the import path comes in whole from here instead.
        "PYTHONPATH": os.pathsep.join(_python_path()),
    }
    env.update(extra)
    return env


def _rlimits(limits: Limits) -> dict[str, int]:
    values = {
        "RLIMIT_CPU": limits.cpu_s,
        "RLIMIT_AS": (limits.memory_mb or 0) * 1024 * 1024,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_NPROC": limits.processes,
    }
    return {name: value for name, value in values.items() if value}


def _shim_environment(spec: ServerSpec, limits: Limits, group: cgroups.Group | None) -> dict[str, str]:
    """The environment of the shell that starts bubblewrap: the server's, plus what the shell applies."""
    env = _environment(spec.environment)
    if group is not None:
        env["CORRAL_CGROUP_PROCS"] = " ".join(group.procs)
    values: dict[str, Any] = {
        "CORRAL_LIMIT_CPU": limits.cpu_s,
        "CORRAL_LIMIT_AS": (limits.memory_mb or 0) * 1024 or None,
        "CORRAL_LIMIT_NOFILE": limits.open_files,
        "CORRAL_LIMIT_NPROC": limits.processes,
    }
    env.update({key: str(value) for key, value in values.items() if value})
    return env
