"""Sandbox zygotes: a bubblewrap sandbox that imports the server stack once and forks sandboxed servers.

Starting Python and importing the server stack costs most of a sandboxed server's cold start. A
:class:`Zygote` pays it once per owner process (and interpreter, import path and preloaded modules): it is
a bubblewrap sandbox running ``python -m corral.runtime.zygote``, which imports the stack and then
forks each server into new namespaces of its own (see :mod:`corral.runtime.zygote.forkserver` for how a
server is confined). Its owner sees each forked server as a :class:`ZygoteChild`, a Popen-like handle.

Lifetimes: the zygote dies with its owner (bubblewrap's ``--die-with-parent`` from the spawner thread, the
lease pipe, and the control socket's end-of-file), and every server forked from it dies with the zygote
(they live in its pid namespace). :func:`zygote_for` restarts a zygote that died, and returns None, having
logged why once, where this machine cannot run one.

What differs from a bubblewrap sandbox per server (the isolation and limits do not): servers forked from
one zygote share its address-space layout and str hash seed (an address leaked by one is valid in its
siblings), and the import-time state of what it preloaded; variables in ``ServerSpec.environment`` that
Python reads at start-up (``PYTHONHASHSEED``, ``PYTHONMALLOC``...) have no effect; the keeper counts as
one more process of the server's user namespace (``Limits.processes``); /run shows the zygote's mount
points, empty; and the server's pid 1 is a forked init rather than bubblewrap's.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path

import orjson

from ...errors import RuntimeFailed, RuntimeUnavailable
from ..lease import lease_fd, process_start_time
from ..process import _spawner, runtime_dir
from . import libc

logger = logging.getLogger("corral.runtime.sandbox")

#: The zygote's folder, its log, and the file naming the owner (to clean up after an owner that was killed).
PREFIX = "corral-zyg-"
LOG = "zygote.log"
OWNER = "owner"


class ZygoteDied(RuntimeFailed):
    """The zygote died before it could fork a server (a fresh one may succeed)."""


class ZygoteChild:
    """A server forked by a zygote, seen from its owner: ``pid`` (its init, in the owner's pid namespace),
    ``poll``, ``wait`` and ``kill``, like a Popen. ``returncode`` follows bubblewrap's convention: 128 + N
    when the server was killed by signal N; negative when its init was. ``lost`` means the zygote died."""

    def __init__(self, channel: socket.socket, pidfd: int) -> None:
        self._channel = channel
        self._pidfd = pidfd
        self._lock = threading.Lock()
        self._closed = False
        self.pid = libc.pidfd_pid(pidfd)
        self.returncode: int | None = None
        self.lost = False

    def go(self) -> None:
        """Let the server start (once the owner has placed it in its cgroup)."""
        self._channel.send(b"go")

    def poll(self) -> int | None:
        return self.wait(0)

    def wait(self, timeout: float) -> int | None:
        """The return code, waiting up to ``timeout`` seconds for it (None: still running)."""
        with self._lock:
            if self.returncode is None and not self._closed:
                self._read(timeout)
            return self.returncode

    def _read(self, timeout: float) -> None:
        self._channel.settimeout(timeout)
        try:
            data = self._channel.recv(4096)
        except (BlockingIOError, TimeoutError):
            return
        except OSError:
            data = b""
        if not data:  # the keeper is gone without a word: the zygote died, and the server with it
            self.lost = True
            self.returncode = -signal.SIGKILL
            return
        status = orjson.loads(data).get("status")
        if status is not None:
            self.returncode = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                self._channel.settimeout(1.0)
                self._channel.recv(16)  # end-of-file: the keeper has exited too

    def kill(self) -> None:
        """SIGKILL the server's init: the kernel then kills everything in its pid namespace."""
        with self._lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._channel.close()
                os.close(self._pidfd)


class Zygote:
    """One zygote sandbox. ``command(servers)`` is the argv that starts it, up to the zygote's own arguments,
    given the folder where server folders go (the zygote must see it)."""

    def __init__(self, command: Callable[[Path], list[str]], env: Mapping[str, str], preload: Sequence[str] = (),
                 start_timeout_s: float = 60.0) -> None:
        self._command = command
        self._env = dict(env)
        self.preload = list(preload)
        self.start_timeout_s = start_timeout_s
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self._control: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def servers(self) -> Path:
        """Where server folders go."""
        if self.folder is None:
            raise RuntimeFailed("the sandbox zygote is not started")
        return self.folder / "servers"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the zygote and wait until it is ready; RuntimeUnavailable (having left nothing) if it cannot."""
        _remove_orphaned_folders()
        self.folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=runtime_dir()))
        try:
            (self.folder / OWNER).write_text(f"{os.getpid()} {process_start_time(os.getpid())}")
            self.servers.mkdir()
            self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            with theirs:
                lease = lease_fd()
                argv = [*self._command(self.servers), str(theirs.fileno()), str(lease), *self.preload]
                with open(self.folder / LOG, "ab") as log:
                    self.process = _spawner.popen(lambda: subprocess.Popen(
                        argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self._env,
                        start_new_session=True, pass_fds=(theirs.fileno(), lease), close_fds=True))
            self._control.settimeout(self.start_timeout_s)
            try:
                message, fds, _, _ = socket.recv_fds(self._control, 65536, 1)
            except TimeoutError:
                raise RuntimeUnavailable(
                    f"the sandbox zygote was not ready within {self.start_timeout_s:g} s") from None
            self._control.settimeout(None)
            reply = orjson.loads(message) if message else {}
            if not reply.get("ready") or not fds:
                why = reply.get("unavailable") or f"it exited at start; its log ends with:\n{self.log_tail()}"
                raise RuntimeUnavailable(f"the sandbox zygote cannot run here: {why}")
            self.pid = libc.pidfd_pid(fds[0])
            os.close(fds[0])
        except BaseException:
            self.stop()
            raise

    def fork(self, folder: str, tmp_bytes: int, timeout: float) -> ZygoteChild:
        """Fork a server whose folder is ``servers/folder``; it waits for :meth:`ZygoteChild.go`."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with theirs, self._lock:
                if self._control is None:
                    raise ZygoteDied("the sandbox zygote is stopped")
                socket.send_fds(self._control, [orjson.dumps({"folder": folder, "tmp_bytes": tmp_bytes})],
                                [theirs.fileno()])
            ours.settimeout(timeout)
            message, fds, _, _ = socket.recv_fds(ours, 65536, 1)
        except TimeoutError:
            ours.close()
            raise RuntimeFailed(f"the sandbox zygote did not fork the server within {timeout:g} s") from None
        except OSError as exc:
            ours.close()
            raise ZygoteDied(f"the sandbox zygote is gone: {exc}") from exc
        reply = orjson.loads(message) if message else {}
        if not reply.get("started") or not fds:
            for fd in fds:
                os.close(fd)
            ours.close()
            if not message:
                raise ZygoteDied("the sandbox zygote died while forking the server")
            raise RuntimeFailed(f"the sandbox zygote could not confine the server: {reply.get('error')}")
        ours.settimeout(None)
        try:
            return ZygoteChild(ours, fds[0])
        except BaseException:
            ours.close()
            os.close(fds[0])
            raise

    def log_tail(self, limit: int = 2000) -> str:
        try:
            return (self.servers.parent / LOG).read_bytes()[-limit:].decode("utf-8", "replace").strip()
        except (OSError, RuntimeFailed):
            return ""

    def stop(self) -> None:
        """Stop the zygote (and so every server forked from it) and remove its folder. Idempotent."""
        if self._control is not None:
            self._control.close()  # end-of-file: the zygote exits, and its sandbox with it
            self._control = None
        if self.process is not None:
            try:
                self.process.wait(2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _remove_orphaned_folders() -> None:
    """Remove the folders of zygotes whose owner is gone (one killed before it could clean up)."""
    with contextlib.suppress(OSError):
        for folder in runtime_dir().glob(f"{PREFIX}*"):
            with contextlib.suppress(OSError, ValueError):
                if folder.stat().st_uid != os.getuid():
                    continue
                pid, start = (folder / OWNER).read_text().split()
                if start != str(process_start_time(int(pid))):
                    shutil.rmtree(folder, ignore_errors=True)


_lock = threading.Lock()
_zygotes: dict[Hashable, Zygote] = {}
_unavailable: dict[Hashable, str] = {}


def zygote_for(key: Hashable, make: Callable[[], Zygote]) -> Zygote | None:
    """The running zygote for ``key``, started (or restarted, if it died) with ``make``; None when this machine
    cannot run one (the reason is logged once, and the answer kept for the life of this process)."""
    with _lock:
        if key in _unavailable:
            return None
        zygote = _zygotes.get(key)
        if zygote is not None and zygote.alive():
            return zygote
        if zygote is not None:
            zygote.stop()
            del _zygotes[key]
        zygote = make()
        try:
            zygote.start()
        except RuntimeUnavailable as exc:
            _unavailable[key] = exc.message
            logger.warning("%s; each sandboxed server starts in its own bubblewrap sandbox instead (slower to "
                           "start, as isolated)", exc.message)
            return None
        _zygotes[key] = zygote
        return zygote


@atexit.register
def stop_all() -> None:
    """Stop every zygote of this process."""
    with _lock:
        zygotes = list(_zygotes.values())
        _zygotes.clear()
    for zygote in zygotes:
        zygote.stop()


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _zygotes.clear()  # a forked owner starts zygotes of its own; these belong to its parent


os.register_at_fork(after_in_child=_forget_after_fork)
