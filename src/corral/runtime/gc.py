"""Find and remove what dead owners left behind: containers, server processes, folders and cgroups.

Every runtime cleans up after itself, and servers die with their owners (the lease pipe, the keeper); this
is the net under those, for what they could not catch (a keeper killed with its owner, a server that hung
instead of seeing its lease end). What counts as an orphan:

- a container labelled ``dev.corral.managed`` whose owner process is gone (same pid and start time, see
  :func:`corral.runtime.lease.owner_alive`). Containers whose owner ran in another pid namespace are left
  alone: their pids cannot be judged from here.
- a server process: the top of a ``python -m corral.runtime.child`` tree in this pid namespace (its parent
  is not one), whose parent is not its owner. The owner holds the write end of the lease pipe whose read
  end the server tree inherited; a parent that holds no such pipe (init, a subreaper) has adopted an orphan.
  The whole tree is killed.
- a folder ``corral-*`` in the runtime folder, older than ``min_age_s``, holding nothing but a server's
  files, that no live process, socket or container uses.
- an empty per-server cgroup under ``corral/``, older than ``min_age_s`` and never younger than 10 s (a
  sandbox joins its cgroup a moment after making it).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import cgroups
from .lease import LABEL_MANAGED, owner_alive
from .process import LOG, SOCKET, SPEC_FILE, runtime_dir

_FOLDER = re.compile(r"corral-(?:[a-z]+-)?[A-Za-z0-9_]{8}")
_SERVER_FILES = {SOCKET, LOG, SPEC_FILE}
_CHILD_MODULE = b"corral.runtime.child"
CGROUP_MIN_AGE_S = 10.0


@dataclass
class Garbage:
    """What :func:`collect_garbage` removed (or, with ``dry_run``, would remove), and what it could not check."""

    containers: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.containers or self.processes or self.folders or self.cgroups)


def collect_garbage(dry_run: bool = False, *, min_age_s: float = 60.0) -> Garbage:
    """Remove orphaned containers, server processes, folders and cgroups (see the module docstring)."""
    garbage = Garbage()
    in_use = _containers(garbage, dry_run)
    _processes(garbage, dry_run, _scan())
    _folders(garbage, dry_run, min_age_s, in_use, _scan())
    _cgroups(garbage, dry_run, min_age_s)
    return garbage


# -- containers --------------------------------------------------------------------------------------


def _containers(garbage: Garbage, dry_run: bool) -> set[str]:
    """Judge managed containers; return the folders of those that stay. Without Docker, note why."""
    try:
        from .docker import LABEL_FOLDER, LABEL_OWNER_PIDNS, connect, pid_namespace, remove_container

        client = connect()
        containers = client.containers.list(all=True, filters={"label": LABEL_MANAGED})
    except Exception as exc:  # no SDK, no daemon: nothing to judge there
        garbage.notes.append(f"containers not checked: {exc}")
        return {"*"}
    ours = pid_namespace()
    kept: set[str] = set()
    for container in containers:
        labels = container.labels or {}
        if labels.get(LABEL_OWNER_PIDNS, ours) != ours or owner_alive(labels):
            kept.add(labels.get(LABEL_FOLDER, ""))
            continue
        garbage.containers.append(container.name)
        if not dry_run:
            remove_container(container)
    return kept


# -- processes --------------------------------------------------------------------------------------


@dataclass
class _Proc:
    pid: int
    ppid: int
    argv: list[bytes]


def _scan() -> dict[int, _Proc]:
    """Every process of this pid namespace that can be read."""
    procs: dict[int, _Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read()
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        procs[pid] = _Proc(pid, ppid, argv)
    return procs


def _is_server(proc: _Proc) -> bool:
    argv = proc.argv
    return any(argv[i] == b"-m" and argv[i + 1] == _CHILD_MODULE for i in range(len(argv) - 1))


def _pipes(pid: int, writing: bool) -> set[str]:
    """The pipes ``pid`` holds open for writing (or for reading only)."""
    found = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError, ValueError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if not target.startswith("pipe:"):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as handle:
                    flags = next(int(line.split()[1], 8) for line in handle if line.startswith("flags:"))
                if (flags & os.O_ACCMODE != os.O_RDONLY) == writing:
                    found.add(target)
    return found


def _orphaned(top: _Proc, procs: dict[int, _Proc]) -> bool:
    if top.ppid <= 1:
        return True
    # The lease pipe's read end may be held below the top: bubblewrap's outer process closes what it
    # inherited, and only the sandbox's pid 1 (and the server) keep it.
    owner_pipes = _pipes(top.ppid, writing=True)
    return not any(_pipes(pid, writing=False) & owner_pipes for pid in _descendants(procs, top.pid))


def _descendants(procs: dict[int, _Proc], pid: int) -> Iterator[int]:
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    stack = [pid]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(children.get(current, []))


def _processes(garbage: Garbage, dry_run: bool, procs: dict[int, _Proc]) -> None:
    own_ns = _pid_ns("self")
    for proc in procs.values():
        parent = procs.get(proc.ppid)
        if not _is_server(proc) or (parent is not None and _is_server(parent)) or _pid_ns(str(proc.pid)) != own_ns:
            continue
        if not _orphaned(proc, procs):
            continue
        garbage.processes.append(proc.pid)
        if not dry_run:
            tree = list(_descendants(procs, proc.pid))
            for pid in tree:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 2
            while any(os.path.exists(f"/proc/{pid}") for pid in tree) and time.monotonic() < deadline:
                time.sleep(0.01)


def _pid_ns(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


# -- folders and cgroups --------------------------------------------------------------------------------


def _bound_sockets() -> set[str]:
    """Paths of the Unix sockets bound in this network namespace."""
    paths = set()
    with contextlib.suppress(OSError), open("/proc/net/unix") as handle:
        next(handle, None)
        for line in handle:
            fields = line.split()
            if len(fields) >= 8 and fields[7].startswith("/"):
                paths.add(fields[7])
    return paths


def _folders(garbage: Garbage, dry_run: bool, min_age_s: float, containers: set[str],
             procs: dict[int, _Proc]) -> None:
    root = runtime_dir()
    sockets = _bound_sockets()
    commands = "\0".join(b"\0".join(p.argv).decode("utf-8", "replace") for p in procs.values())
    now = time.time()
    for folder in sorted(root.iterdir()):
        try:
            if not (_FOLDER.fullmatch(folder.name) and folder.is_dir() and not folder.is_symlink()):
                continue
            if now - folder.stat().st_mtime < min_age_s or not set(os.listdir(folder)) <= _SERVER_FILES:
                continue
        except OSError:
            continue
        if "*" in containers and folder.name.startswith("corral-dkr-"):
            continue  # Docker could not be asked whether a container uses it
        if str(folder) in containers or str(folder / SOCKET) in sockets or str(folder) in commands:
            continue
        garbage.folders.append(str(folder))
        if not dry_run:
            shutil.rmtree(folder, ignore_errors=True)


def _cgroups(garbage: Garbage, dry_run: bool, min_age_s: float) -> None:
    parents = [cgroups.ROOT / cgroups.PARENT, *(d / cgroups.PARENT for d in _v1_hierarchies())]
    now = time.time()
    min_age_s = max(min_age_s, CGROUP_MIN_AGE_S)
    for parent in parents:
        with contextlib.suppress(OSError):
            for group in sorted(p for p in parent.iterdir() if p.is_dir()):
                with contextlib.suppress(OSError):
                    if now - group.stat().st_mtime < min_age_s or (group / "cgroup.procs").read_text().strip():
                        continue
                    garbage.cgroups.append(str(group))
                    if not dry_run:
                        group.rmdir()


def _v1_hierarchies() -> list[Path]:
    with contextlib.suppress(OSError):
        return [d for d in cgroups.ROOT.iterdir() if d.is_dir() and d.name != cgroups.PARENT]
    return []
