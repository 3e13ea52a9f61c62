"""Inside a zygote's sandbox: import the server stack once, then fork each server into namespaces of its own.

The zygote runs in a bubblewrap sandbox like a plain server's (no network, read-only system) with one
capability, which it uses once, at start, to mount a /proc that a user namespace may copy, and then drops
for good. Each request from its owner (a server folder's name, the size of its /tmp and a channel socket)
becomes three processes:

- the *keeper*, forked from the zygote, enters new user, mount, network, ipc, uts and pid namespaces, in
  which it is uid 1000 with capabilities over those namespaces only; mounts a fresh /tmp and /dev, binds its
  own folder at /run/corral, and covers the zygote's folders; sends its owner a pidfd of the next process,
  waits for it, sends how it ended, and exits.
- *init*, pid 1 of the new pid namespace, mounts its own /proc, waits for the owner to place it in the
  server's cgroup, enters a new cgroup namespace, sets the rlimits, drops every capability (no_new_privs
  too), closes every inherited descriptor, forks the server and reaps orphans until the server exits. When
  init exits, or is killed, the kernel kills everything left in its pid namespace.
- the *server* serves the environment on /run/corral/server.sock, as :func:`corral.runtime.child.serve_spec`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import resource
import select
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import orjson

from ..child import read_spec, serve_spec
from ..process import LOG, SPEC_FILE
from . import libc

#: Where a server sees its own folder (as in a plain bubblewrap sandbox).
INSIDE = "/run/corral"
#: Where the zygote sees every server's folder; a server sees an empty folder there.
SERVERS = "/run/corral-servers"
#: A /proc of the zygote's with nothing mounted over it: the kernel lets a user namespace mount a new
#: /proc only where one is fully visible already. A server sees an empty folder there.
FULL_PROC = "/run/corral-proc"
#: Where a server's /dev is put together before it replaces the zygote's.
DEV_STAGE = "/run/corral-dev"
#: The uid and gid of a server in its own user namespace.
SANDBOX_ID = 1000

#: What a server imports to serve, beyond ``corral.server`` itself: imported once, in the zygote.
SERVER_STACK = ("corral.envs", "corral.envs.echo", "corral.server", "uvloop", "httptools",
                "uvicorn.loops.uvloop", "uvicorn.lifespan.on", "uvicorn.protocols.http.httptools_impl",
                "pydantic.type_adapter", "pydantic._internal._dataclasses")

_NAMESPACES = libc.CLONE_NEWNS | libc.CLONE_NEWNET | libc.CLONE_NEWIPC | libc.CLONE_NEWUTS | libc.CLONE_NEWPID
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_DEVICE_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
                 "stderr": "/proc/self/fd/2", "core": "/proc/kcore", "ptmx": "pts/ptmx"}
_PROC_COVERS = ("sys", "sysrq-trigger", "irq", "bus")  # read-only, as bubblewrap shows them


def run_zygote(control_fd: int, lease_fd: int, preload: list[str]) -> int:
    """The zygote's life: prepare, report ready (with a pidfd of itself), then fork a server per request
    until the owner closes the control socket or its lease ends."""
    control = socket.socket(fileno=control_fd)
    try:
        libc.mount("proc", FULL_PROC, "proc", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)
        # Be uid 1000 of a user namespace of its own (the kernel lets a process map its own uid into a user
        # namespace it creates, but uid 0, as the zygote may be, only with CAP_SETFCAP), then drop everything.
        libc.unshare_user(0, SANDBOX_ID, SANDBOX_ID)
        libc.drop_capabilities()
        _probe()
    except OSError as exc:
        control.send(orjson.dumps({"unavailable": str(exc)}))
        return 1
    for module in (*SERVER_STACK, *preload):
        try:
            importlib.import_module(module)
        except Exception as exc:  # the server's own import will report it properly
            print(f"corral zygote: could not preload {module}: {exc!r}", file=sys.stderr)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps exited keepers
    gc.collect()
    gc.freeze()  # the collector then leaves the shared pages alone, so forked servers copy fewer
    itself = os.pidfd_open(os.getpid())
    socket.send_fds(control, [orjson.dumps({"ready": True})], [itself])
    os.close(itself)
    while True:
        readable, _, _ = select.select([control.fileno(), lease_fd], [], [])
        if lease_fd in readable and not os.read(lease_fd, 4096):
            return 0
        if control.fileno() in readable:
            message, fds, _, _ = socket.recv_fds(control, 65536, 1)
            if not message:
                return 0
            if fds:
                _fork_keeper(orjson.loads(message), fds[0])


def _fork_keeper(request: dict[str, Any], channel_fd: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError as exc:
        with socket.socket(fileno=channel_fd) as channel:
            _send(channel, {"error": f"the zygote could not fork: {exc}"})
        return
    if pid == 0:
        _exit_after(_keeper, request, socket.socket(fileno=channel_fd))
    os.close(channel_fd)


def _keeper(request: dict[str, Any], channel: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        folder = str(request["folder"])
        if not folder or "/" in folder or folder.startswith("."):
            raise OSError(f"not a server folder name: {folder!r}")
        _enter_namespaces(folder, int(request.get("tmp_bytes") or 0))
        pid = os.fork()
        if pid == 0:
            _exit_after(_init, channel)
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        _send(channel, {"error": str(exc)})
        raise SystemExit(1) from exc
    socket.send_fds(channel, [orjson.dumps({"started": True})], [pidfd])
    os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    _send(channel, {"status": status})


def _init(channel: socket.socket) -> NoReturn:
    os.setsid()
    log = os.open(f"{INSIDE}/{LOG}", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    _mount_proc()
    if channel.recv(16) != b"go":  # the owner gave up on this server
        raise SystemExit(1)
    channel.close()
    libc.unshare(libc.CLONE_NEWCGROUP)  # now that the owner has placed this process in its cgroup
    spec = read_spec(f"{INSIDE}/{SPEC_FILE}")
    sandbox: dict[str, Any] = spec.pop("sandbox", {})
    for name, value in sandbox.get("rlimits", {}).items():
        resource.setrlimit(getattr(resource, name), (value, value))
    libc.drop_capabilities()
    _close_inherited_descriptors()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    server = os.fork()
    if server == 0:
        _exit_after(_serve, spec, sandbox.get("environ", {}))
    while True:  # pid 1 adopts every orphan of the namespace
        pid, status = os.waitpid(-1, 0)
        if pid == server:
            os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))


def _serve(spec: dict[str, Any], environ: dict[str, str]) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.clear()
    os.environ.update(environ)
    serve_spec(spec)


def _enter_namespaces(folder: str | None, tmp_bytes: int) -> None:
    """New namespaces for this process and its children, and the filesystem a server sees in them."""
    libc.unshare_user(_NAMESPACES, SANDBOX_ID, SANDBOX_ID)
    libc.loopback_up()
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
    size = f",size={tmp_bytes}" if tmp_bytes else ""
    libc.mount("tmpfs", "/tmp", "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, f"mode=1777{size}")
    os.chdir("/tmp")  # the zygote's own /tmp is out of reach now, even relative to the working directory
    _mount_dev(size)
    if folder is not None:
        libc.mount(f"{SERVERS}/{folder}", INSIDE, None, libc.MS_BIND)
    for covered in (SERVERS, FULL_PROC):
        libc.mount("tmpfs", covered, "tmpfs", libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC,
                   "size=4k,mode=0755")


def _mount_dev(size: str) -> None:
    """A private /dev like bubblewrap's: the usual devices, a private devpts, a writable tmpfs for the rest."""
    libc.mount("tmpfs", DEV_STAGE, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, f"mode=0755{size}")
    for name in _DEVICES:
        target = f"{DEV_STAGE}/{name}"
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o666))
        libc.mount(f"/dev/{name}", target, None, libc.MS_BIND)
    for name, link in _DEVICE_LINKS.items():
        os.symlink(link, f"{DEV_STAGE}/{name}")
    os.mkdir(f"{DEV_STAGE}/shm")
    os.mkdir(f"{DEV_STAGE}/pts")
    libc.mount("devpts", f"{DEV_STAGE}/pts", "devpts", libc.MS_NOSUID | libc.MS_NOEXEC,
               "newinstance,ptmxmode=0666,mode=620")
    libc.mount(DEV_STAGE, "/dev", None, libc.MS_MOVE)


def _mount_proc() -> None:
    libc.mount("proc", "/proc", "proc", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)
    for name in _PROC_COVERS:
        if os.path.exists(f"/proc/{name}"):
            libc.bind_read_only(f"/proc/{name}")


def _close_inherited_descriptors() -> None:
    for name in os.listdir("/proc/self/fd"):
        if int(name) > 2:
            with contextlib.suppress(OSError):
                os.close(int(name))


def _probe() -> None:
    """Confine a throw-away process the way each server will be, once, to learn whether this machine allows
    it (nested user namespaces, mounts in them); raise OSError saying why not."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            _enter_namespaces(None, 1 << 20)
            inner = os.fork()
            if inner == 0:
                try:
                    _mount_proc()
                    libc.drop_capabilities()
                except BaseException as exc:
                    os.write(write, str(exc).encode())
                    os._exit(1)
                os._exit(0)
            _, status = os.waitpid(inner, 0)
            os._exit(os.waitstatus_to_exitcode(status))
        except BaseException as exc:
            os.write(write, str(exc).encode())
        os._exit(1)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        why = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise OSError(f"a server cannot be confined here: {why or os.waitstatus_to_exitcode(status)}")


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        channel.send(orjson.dumps(message))


def _exit_after(body: Callable[..., object], *args: Any) -> NoReturn:
    """Run ``body`` in a forked process, then exit: never return into the frames it was forked from."""
    code = 1
    try:
        body(*args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
