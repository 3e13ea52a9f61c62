"""``corral bench``: a quick built-in measurement, or the benchmark suites of a Corral checkout.

The built-in mode needs nothing but Corral: it starts one server in a runtime and measures start to
ready, session open (connect + reset), the step round trip with the blocking client (p50, p99, steps/s),
and batched stepping of many sessions over one connection. The suites (``benchmarks/`` in a source
checkout: ``run.py`` side by side with openenv-core, ``runtimes.py``, ``runtimes_docker.py``) are run as
they are, with their own options.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from ..errors import UsageError
from ..policy import load_policy
from ..runtime import launch
from ..testing import InProcessClient
from ..testing.check_env import _sample
from ..types import Action
from .run import Target, find

#: Suites and the script (plus options) each one runs, relative to the checkout.
SUITES = {
    "quick": ["benchmarks/run.py", "--quick"],
    "full": ["benchmarks/run.py"],
    "runtimes": ["benchmarks/runtimes.py"],
    "docker": ["benchmarks/runtimes_docker.py"],
}
WARMUP = 100
OPENS = 20


def find_checkout(given: Path | None) -> Path:
    """The Corral source checkout holding ``benchmarks/``: ``given``, else the first folder up from here that
    has one, else the one the installed ``corral`` was imported from (an editable install)."""
    import corral

    if given is not None:
        candidates = [given]
    else:
        here = Path.cwd().resolve()
        candidates = [here, *here.parents, Path(corral.__file__).resolve().parents[2]]
    for folder in candidates:
        if (folder / "benchmarks" / "run.py").is_file():
            return folder
    where = str(given) if given is not None else f"{Path.cwd()}, the folders above it or beside the installed corral"
    raise UsageError(f"no Corral checkout with benchmarks/run.py in {where}; the suites live in the source "
                     "checkout: run from one or pass --checkout PATH ('corral bench' without --suite needs none)")


def run_suite(suite: str, checkout: Path | None, extra: list[str], console: Console) -> int:
    """Run a suite's script from the checkout with this interpreter; return its exit status."""
    if suite not in SUITES:
        raise UsageError(f"unknown suite {suite!r}: use one of {', '.join(SUITES)}")
    root = find_checkout(checkout)
    script, *options = SUITES[suite]
    argv = [sys.executable, str(root / script), *options, *extra]
    console.print(f"[bold]corral bench[/]: {' '.join([Path(script).name, *options, *extra])} in {root}")
    return subprocess.run(argv, cwd=root, check=False).returncode


def quick_bench(env: str, *, runtime: str, steps: int, sessions: int, console: Console) -> dict[str, Any]:
    """Measure ``env`` in ``runtime``; print a table and return the numbers."""
    if steps < 1 or sessions < 1:
        raise UsageError("--steps and --sessions must be at least 1")
    found = find(env)
    action = _action(found)
    started = time.perf_counter()
    with launch(found.launch, runtime) as server:
        ready_ms = (time.perf_counter() - started) * 1000
        types = {"action_type": found.env_cls.action_type, "observation_type": found.env_cls.observation_type}
        opens = []
        for _ in range(OPENS):
            t0 = time.perf_counter()
            with server.client(**types) as client:
                client.reset()
                opens.append(time.perf_counter() - t0)
        columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn())
        with server.client(**types) as client, Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("steps", total=WARMUP + steps)
            latencies = []
            result = client.reset(seed=0)
            for n in range(WARMUP + steps):
                if result.done:
                    result = client.reset()
                t0 = time.perf_counter()
                result = client.step(action)
                if n >= WARMUP:
                    latencies.append(time.perf_counter() - t0)
                progress.advance(task)
            group = client.sessions(sessions)
            group.reset()
            rounds = max(1, steps // sessions)
            t0 = time.perf_counter()
            for _ in range(rounds):
                if any(stepped is not None and stepped.done for stepped in group.step([action] * sessions)):
                    group.reset()
            batched_s = time.perf_counter() - t0
    latencies.sort()
    opens.sort()
    numbers = {
        "env": found.env_cls.info.name, "runtime": server.runtime, "start_to_ready_ms": ready_ms,
        "open_p50_ms": opens[len(opens) // 2] * 1000,
        "step_p50_us": latencies[len(latencies) // 2] * 1e6,
        "step_p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e6,
        "steps_per_s": len(latencies) / sum(latencies),
        "batched_sessions": sessions, "batched_steps_per_s": rounds * sessions / batched_s,
    }
    table = Table(title=f"corral bench: {numbers['env']} in a {server.runtime} ({steps} steps, blocking client)",
                  title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("start to ready", f"{ready_ms:.0f} ms")
    table.add_row("session open (connect + reset), p50", f"{numbers['open_p50_ms']:.2f} ms")
    table.add_row("step round trip p50", f"{numbers['step_p50_us']:.0f} µs")
    table.add_row("step round trip p99", f"{numbers['step_p99_us']:.0f} µs")
    table.add_row("steps/s, one session", f"{numbers['steps_per_s']:,.0f}")
    table.add_row(f"steps/s, {sessions} sessions batched on one connection", f"{numbers['batched_steps_per_s']:,.0f}")
    console.print(table)
    return numbers


def _action(found: Target) -> Action | dict[str, Any]:
    """What every step sends: the scripted policy's first move, else an action made from the field examples."""
    try:
        policy = load_policy("scripted", found.env_cls, found.package)
    except UsageError:
        return _sample(found.env_cls, None)
    with InProcessClient(found.env_cls) as client:
        return policy(client.reset(seed=0).observation, random.Random(0))
