"""``corral demo``: start a server in a sandbox (or another runtime), roll out episodes, summarise."""

from __future__ import annotations

import random
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..client import EnvClient
from ..envs import BUILTINS, resolve
from ..errors import UsageError
from ..policy import load_policy
from ..runtime import Server, launch
from ..runtime.sandbox import sandbox_available

ECHO_STEPS = 16


def start_server(env: str, runtime: str, console: Console) -> Server:
    """Start ``env`` in ``runtime``; the sandbox tier falls back to a subprocess, saying why, when this machine
    cannot create namespaces."""
    if runtime == "sandbox":
        available, why = sandbox_available()
        if not available:
            console.print(f"[yellow]note:[/] {why}; running the episodes in a plain subprocess instead "
                          "(no isolation). Install bubblewrap, or pass --runtime subprocess to silence this.")
            runtime = "subprocess"
    return launch(env, runtime)


def run_demo(*, env: str, episodes: int, policy: str, seed: int, console: Console,
             runtime: str = "sandbox") -> dict[str, Any]:
    if env not in BUILTINS:
        raise UsageError(f"demo supports the built-in environments {sorted(BUILTINS)}, not {env!r}; "
                         "'corral run' rolls out any environment")
    env_cls = resolve(env)
    act = load_policy(policy, env_cls)
    rng = random.Random(seed)
    returns: list[float] = []
    latencies: list[float] = []
    solved = 0
    started = time.perf_counter()
    with start_server(env, runtime, console) as server:
        ready_s = time.perf_counter() - started
        console.print(f"[bold]corral demo[/]: {env} server in a {server.runtime} at {server.url}, ready in "
                      f"{ready_s * 1000:.0f} ms; {episodes} episodes, {policy} policy")
        columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        started = time.perf_counter()
        client: EnvClient[Any, Any] = server.client(observation_type=env_cls.observation_type)
        with client, \
                Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("episodes", total=episodes)
            for episode in range(episodes):
                result = client.reset(seed=seed + episode)
                total = 0.0
                steps = 0
                while not result.done and (env != "echo" or steps < ECHO_STEPS):
                    action = act(result.observation, rng)
                    t0 = time.perf_counter()
                    result = client.step(action)
                    latencies.append(time.perf_counter() - t0)
                    total += result.reward or 0.0
                    steps += 1
                solved += int(result.terminated)
                returns.append(total)
                progress.advance(task)
        elapsed = time.perf_counter() - started
    latencies.sort()
    summary = {
        "episodes": episodes,
        "mean_reward": sum(returns) / len(returns),
        "terminated": solved,
        "steps": len(latencies),
        "steps_per_s": len(latencies) / elapsed if elapsed else 0.0,
        "p50_us": latencies[len(latencies) // 2] * 1e6 if latencies else 0.0,
        "p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e6 if latencies else 0.0,
        "runtime": server.runtime,
        "start_to_ready_ms": ready_s * 1000,
    }
    table = Table(title=f"corral demo: {env} ({policy} policy)")
    for column in ("episodes", "mean reward", "solved", "steps", "steps/s", "step p50", "step p99"):
        table.add_column(column, justify="right")
    table.add_row(
        str(episodes), f"{summary['mean_reward']:.3f}", f"{solved}/{episodes}", str(summary["steps"]),
        f"{summary['steps_per_s']:,.0f}", f"{summary['p50_us']:.0f} µs", f"{summary['p99_us']:.0f} µs",
    )
    console.print(table)
    return summary



