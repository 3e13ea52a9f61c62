"""``corral run`` (and ``corral demo``): start a server, roll out episodes with a policy, summarise.

Episodes are played by :func:`corral.rollout.play`. With ``concurrency`` > 1, that many threads each hold
their own client (one session each) and take the next episode when they finish one; episode ``i`` always
uses seed ``seed + i``, so results do not depend on the concurrency.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..environment import EnvClass
from ..errors import UsageError
from ..package import EnvPackage
from ..policy import Policy, load_policy
from ..rollout import Episode, Step, play
from ..runtime import Server, launch
from ..runtime.sandbox import sandbox_available

#: Steps an episode may take when neither ``--max-steps`` nor a manifest says.
DEFAULT_MAX_STEPS = 200


@dataclass(frozen=True)
class Target:
    """An environment as the user named it, resolved: its class, what a runtime starts, and its package."""

    spec: str
    env_cls: EnvClass
    launch: str
    package: EnvPackage | None


def find(spec: str) -> Target:
    """Resolve anything :func:`corral.envs.resolve` takes, keeping the package when ``spec`` names one."""
    from ..envs import package_of, resolve, target

    package = package_of(spec)
    where = target(spec)
    return Target(spec, resolve(where), where, package)


def start_server(env: str, runtime: str, console: Console, *, fallback: bool = True) -> Server:
    """Start ``env`` in ``runtime``. With ``fallback``, the sandbox tier falls back to a subprocess, saying
    why, when this machine cannot create namespaces."""
    if runtime == "sandbox" and fallback:
        available, why = sandbox_available()
        if not available:
            console.print(f"[yellow]note:[/] {why}; running the episodes in a plain subprocess instead "
                          "(no isolation). Install bubblewrap, or pass --runtime subprocess to silence this.")
            runtime = "subprocess"
    return launch(env, runtime)


def run_episodes(env: str, *, episodes: int, policy: str, seed: int = 0, max_steps: int | None = None,
                 runtime: str | None = None, record: Path | None = None, concurrency: int = 1,
                 console: Console, title: str = "corral run", sandbox_fallback: bool | None = None) -> dict[str, Any]:
    """Roll out ``episodes`` episodes of ``env`` with ``policy``; print progress and a summary table; return the
    summary. ``runtime`` and ``max_steps`` default to the package manifest's (else sandbox and 200). The
    sandbox tier falls back to a subprocess where it cannot run when ``sandbox_fallback`` (default: when no
    ``runtime`` was asked for)."""
    if episodes < 1 or concurrency < 1:
        raise UsageError("--episodes and --concurrency must be at least 1")
    found = find(env)
    manifest = found.package.manifest if found.package is not None else None
    act = load_policy(policy, found.env_cls, found.package)
    steps_cap = max_steps or (manifest.max_steps if manifest is not None else DEFAULT_MAX_STEPS)
    chosen = runtime or (manifest.runtime if manifest is not None else "sandbox")
    name = found.env_cls.info.name
    fallback = runtime is None if sandbox_fallback is None else sandbox_fallback
    started = time.perf_counter()
    with start_server(found.launch, chosen, console, fallback=fallback) as server, \
            _recorder(record) as write:
        ready_s = time.perf_counter() - started
        console.print(f"[bold]{title}[/]: {name} server in a {server.runtime} at {server.url}, ready in "
                      f"{ready_s * 1000:.0f} ms; {episodes} episodes, {policy} policy")
        columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("episodes", total=episodes)
            started = time.perf_counter()
            played = _roll_out(server, found.env_cls, act, episodes=episodes, seed=seed, max_steps=steps_cap,
                               concurrency=concurrency, write=write, done=lambda: progress.advance(task))
            elapsed = time.perf_counter() - started
    summary = _summary(played, elapsed, runtime=server.runtime, ready_s=ready_s, record=record)
    _print_summary(summary, console, f"{title}: {name} ({policy} policy)")
    return summary


def _roll_out(server: Server, env_cls: EnvClass, act: Policy, *, episodes: int, seed: int, max_steps: int,
              concurrency: int, write: Any, done: Any) -> list[Episode]:
    queue = iter(range(episodes))
    lock = threading.Lock()
    played: list[Episode] = []

    def next_episode() -> int | None:
        with lock:
            return next(queue, None)

    def worker() -> None:
        with server.client(action_type=env_cls.action_type, observation_type=env_cls.observation_type,
                           state_type=env_cls.state_type) as client:
            while (index := next_episode()) is not None:
                episode = play(client, act, episode=index, seed=seed + index, max_steps=max_steps, on_step=write)
                with lock:
                    played.append(episode)
                done()

    workers = min(concurrency, episodes)
    if workers == 1:
        worker()
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="corral-run") as pool:
            for future in [pool.submit(worker) for _ in range(workers)]:
                future.result()
    return sorted(played, key=lambda episode: episode.index)


class _Writer:
    """Writes steps as JSON lines, one call at a time (workers share it)."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.lock = threading.Lock()

    def __call__(self, step: Step) -> None:
        line = orjson.dumps(step.record()) + b"\n"
        with self.lock:
            self.file.write(line)


@contextlib.contextmanager
def _recorder(path: Path | None) -> Iterator[_Writer | None]:
    """A step writer for ``--record``, or None without one."""
    if path is None:
        yield None
        return
    try:
        file = path.open("wb")
    except OSError as exc:
        raise UsageError(f"cannot write the record to {path}: {exc.strerror}") from exc
    with file:
        yield _Writer(file)


def _percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] if values else 0.0


def _summary(played: list[Episode], elapsed: float, *, runtime: str, ready_s: float,
             record: Path | None) -> dict[str, Any]:
    latencies = sorted(s for episode in played for s in episode.step_seconds)
    returns = [episode.total_reward for episode in played]
    return {
        "episodes": len(played),
        "mean_reward": sum(returns) / len(returns),
        "min_reward": min(returns),
        "max_reward": max(returns),
        "terminated": sum(episode.terminated for episode in played),
        "truncated": sum(episode.truncated for episode in played),
        "cut": sum(episode.cut for episode in played),
        "steps": len(latencies),
        "steps_per_s": len(latencies) / elapsed if elapsed else 0.0,
        "p50_us": _percentile(latencies, 0.5) * 1e6,
        "p99_us": _percentile(latencies, 0.99) * 1e6,
        "runtime": runtime,
        "start_to_ready_ms": ready_s * 1000,
        "record": str(record) if record is not None else None,
    }


def _print_summary(summary: dict[str, Any], console: Console, title: str) -> None:
    episodes = summary["episodes"]
    rows = [
        ("episodes", str(episodes)),
        ("mean reward", f"{summary['mean_reward']:.3f} (min {summary['min_reward']:.3g}, max "
                        f"{summary['max_reward']:.3g})"),
        ("solved (terminated)", f"{summary['terminated']}/{episodes}"),
        ("truncated", str(summary["truncated"])),
        ("hit --max-steps", str(summary["cut"])),
        ("steps", str(summary["steps"])),
        ("steps/s", f"{summary['steps_per_s']:,.0f}"),
        ("step round trip p50 / p99", f"{summary['p50_us']:.0f} µs / {summary['p99_us']:.0f} µs"),
    ]
    if summary["record"]:
        rows.append(("record", summary["record"]))
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
