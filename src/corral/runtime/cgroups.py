"""Per-server cgroups (memory, pids, CPU) where the machine lets this process create them.

Both layouts are handled: the unified hierarchy (cgroup v2: ``/sys/fs/cgroup/corral/ID``) and the legacy
one (v1: ``/sys/fs/cgroup/{memory,pids,cpu}/corral/ID``). Without a writable hierarchy, :func:`create`
returns None and the sandbox relies on rlimits alone (say so in diagnostics, never fail for it).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "corral"


@dataclass
class Group:
    """The cgroup directories of one server; ``procs`` are the files a process writes its pid to."""

    dirs: list[Path]

    @property
    def procs(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def kill(self) -> None:
        """SIGKILL every process left in the group (v2 has ``cgroup.kill``; v1 lists ``cgroup.procs``)."""
        for d in self.dirs:
            if (d / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    (d / "cgroup.kill").write_text("1")
            else:
                for pid in _pids(d):
                    with contextlib.suppress(OSError):
                        os.kill(pid, 9)

    def remove(self, timeout: float = 2.0) -> None:
        """Kill what is left and remove the directories (a cgroup can only go once it is empty)."""
        deadline = time.monotonic() + timeout
        for d in self.dirs:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    self.kill()
                    time.sleep(0.01)

    def memory_events_oom(self) -> bool:
        """Whether the memory limit killed something (to explain a dead server)."""
        for d in self.dirs:
            events = d / "memory.events"
            with contextlib.suppress(OSError, ValueError):
                if events.exists():
                    for line in events.read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and int(value) > 0:
                            return True
            failcnt = d / "memory.failcnt"
            with contextlib.suppress(OSError, ValueError):
                if failcnt.exists() and int(failcnt.read_text()) > 0:
                    return True
        return False


def _pids(directory: Path) -> list[int]:
    try:
        return [int(line) for line in (directory / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _v2() -> bool:
    return (ROOT / "cgroup.controllers").exists()


def create(name: str, *, memory_bytes: int | None, pids: int | None, cpus: float | None) -> Group | None:
    """Create the cgroup(s) for one server, or None when the machine does not allow it."""
    try:
        return _create_v2(name, memory_bytes, pids, cpus) if _v2() else _create_v1(name, memory_bytes, pids, cpus)
    except OSError:
        return None


def _create_v2(name: str, memory_bytes: int | None, pids: int | None, cpus: float | None) -> Group | None:
    parent = ROOT / PARENT
    parent.mkdir(exist_ok=True)
    available = set((ROOT / "cgroup.subtree_control").read_text().split())
    wanted = [c for c in ("memory", "pids", "cpu") if c in (ROOT / "cgroup.controllers").read_text().split()]
    for controller in wanted:
        if controller not in available:
            with contextlib.suppress(OSError):
                (ROOT / "cgroup.subtree_control").write_text(f"+{controller}")
        with contextlib.suppress(OSError):
            (parent / "cgroup.subtree_control").write_text(f"+{controller}")
    directory = parent / name
    directory.mkdir()
    group = Group([directory])
    try:
        if memory_bytes:
            (directory / "memory.max").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):
                (directory / "memory.swap.max").write_text("0")
        if pids:
            (directory / "pids.max").write_text(str(pids))
        if cpus:
            (directory / "cpu.max").write_text(f"{int(cpus * 100_000)} 100000")
    except OSError:
        group.remove()
        raise
    return group


def _create_v1(name: str, memory_bytes: int | None, pids: int | None, cpus: float | None) -> Group | None:
    settings = {
        "memory": [("memory.limit_in_bytes", memory_bytes)],
        "pids": [("pids.max", pids)],
        "cpu": [("cpu.cfs_period_us", 100_000 if cpus else None),
                ("cpu.cfs_quota_us", int(cpus * 100_000) if cpus else None)],
    }
    dirs: list[Path] = []
    try:
        for controller, files in settings.items():
            if not any(value for _, value in files) or not (ROOT / controller).is_dir():
                continue
            directory = ROOT / controller / PARENT / name
            directory.mkdir(parents=True)
            dirs.append(directory)
            for filename, value in files:
                if value:
                    (directory / filename).write_text(str(value))
    except OSError:
        Group(dirs).remove()
        raise
    return Group(dirs) if dirs else None
