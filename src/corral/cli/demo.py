"""``corral demo``: start a server in its own process, roll out episodes, summarise."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..client import EnvClient
from ..envs import resolve
from ..envs.echo import EchoAction
from ..envs.guess import GuessAction, bisect_policy
from ..errors import TransportError, UsageError
from ..types import Action, Observation

Policy = Callable[[Observation, random.Random], Action]

POLICIES: dict[str, dict[str, Policy]] = {
    "echo": {
        "scripted": lambda obs, rng: EchoAction(message="hello corral"),
        "random": lambda obs, rng: EchoAction(message="x" * rng.randint(1, 20)),
    },
    "guess": {
        "scripted": lambda obs, rng: bisect_policy(obs),  # type: ignore[arg-type]
        "random": lambda obs, rng: GuessAction(
            guess=rng.randint(obs.low, max(obs.low, obs.high))  # type: ignore[attr-defined]
        ),
    },
}
ECHO_STEPS = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``corral serve`` in a child process; stopped (and reaped) on exit, whatever happened."""

    def __init__(self, env: str, port: int) -> None:
        self.env = env
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.start_to_healthy_s = 0.0

    def __enter__(self) -> ServerProcess:
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "corral.cli.main", "serve", self.env, "--port", str(self.port),
             "--log-level", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = started + 30
        with httpx.Client(timeout=1.0) as http:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise TransportError(f"the environment server exited at start: {err.strip()[-500:]}")
                try:
                    if http.get(f"{self.url}/health").status_code == 200:
                        self.start_to_healthy_s = time.perf_counter() - started
                        return self
                except httpx.TransportError:
                    time.sleep(0.01)
        self.__exit__()
        raise TransportError("the environment server did not become healthy within 30 s")

    def __exit__(self, *exc: object) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def run_demo(*, env: str, episodes: int, policy: str, seed: int, console: Console) -> dict[str, Any]:
    if env not in POLICIES:
        raise UsageError(f"demo supports the built-in environments {sorted(POLICIES)}, not {env!r}")
    if policy not in POLICIES[env]:
        raise UsageError(f"policy must be one of {sorted(POLICIES[env])}, not {policy!r}")
    env_cls = resolve(env)
    act = POLICIES[env][policy]
    rng = random.Random(seed)
    returns: list[float] = []
    latencies: list[float] = []
    solved = 0
    with ServerProcess(env, free_port()) as server:
        console.print(f"[bold]corral demo[/]: {env} server at {server.url} healthy in "
                      f"{server.start_to_healthy_s * 1000:.0f} ms; {episodes} episodes, {policy} policy")
        columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        started = time.perf_counter()
        client: EnvClient[Any, Any] = EnvClient(server.url, observation_type=env_cls.observation_type)
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
        "start_to_healthy_ms": server.start_to_healthy_s * 1000,
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



