"""Runtimes: cold start to first reset per tier, warm-pool acquire, and 64 concurrent sandboxed sessions.

    .venv/bin/python benchmarks/runtimes.py            # all tiers this machine has (~1-2 min)
    .venv/bin/python benchmarks/runtimes.py --quick    # fewer runs
    .venv/bin/python benchmarks/runtimes.py --only cold,warm --tiers sandbox

"Cold start to first reset" is what a caller waits for a fresh server: ``runtime.start`` (spawn, then the
readiness round trip) plus its own client's connect and first reset. The ``sandbox`` tier forks servers from
a zygote (started once, before the runs, and timed apart); ``sandbox-bwrap`` is the same tier starting a
bubblewrap sandbox per server. The floor (fastest run) sits beside the median: the machine may be shared.
"Warm acquire" is a warm pool's ``acquire`` plus the client's connect and first reset, with the pool refilled
between acquires. Memory per sandboxed session is the proportional set size (PSS) of every process of the 64
sandboxes, divided by 64.
Writes ``benchmarks/results/runtimes.json``; the Docker rows come from ``benchmarks/runtimes_docker.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from corral import AsyncEnvClient, EnvClient  # noqa: E402
from corral.runtime import Runtime, Server, get_runtime  # noqa: E402
from corral.runtime.pool import WarmPool  # noqa: E402
from corral.runtime.sandbox import SandboxRuntime, sandbox_available  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "runtimes.json"
TARGETS = {"warm_ms": 10.0, "cold_sandbox_ms": 150.0, "cold_docker_ms": 1000.0}


def first_reset(server: Server) -> None:
    client: EnvClient[Any, Any] = server.client()
    with client:
        client.reset()


def runtime_for(tier: str) -> Runtime:
    return SandboxRuntime(zygote=False) if tier == "sandbox-bwrap" else get_runtime(tier)


def cold(tier: str, runs: int) -> dict[str, Any]:
    runtime = runtime_for(tier)
    extra: dict[str, Any] = {}
    if isinstance(runtime, SandboxRuntime) and runtime.zygote:
        started = time.perf_counter()
        extra["zygote"] = runtime.uses_zygote()
        extra["zygote_start_ms"] = round((time.perf_counter() - started) * 1000, 1)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        server = runtime.start("echo")
        try:
            first_reset(server)
            samples.append((time.perf_counter() - started) * 1000)
        finally:
            server.stop()
    return {"p50_ms": statistics.median(samples), "min_ms": min(samples), "runs_ms": [round(s, 1) for s in samples],
            **extra}


def warm(tier: str, runs: int, size: int = 4) -> dict[str, Any]:
    samples = []
    with WarmPool("echo", tier, size=size) as pool:
        pool.wait_full(120)
        for _ in range(runs):
            started = time.perf_counter()
            server = pool.acquire()
            first_reset(server)
            samples.append((time.perf_counter() - started) * 1000)
            pool.release(server)
            pool.wait_full(60)
    return {"p50_ms": statistics.median(samples), "p99_ms": _quantile(samples, 0.99), "pool_size": size,
            "runs_ms": [round(s, 2) for s in samples]}


def concurrent(tier: str, sessions: int, seconds: float) -> dict[str, Any]:
    """``sessions`` servers, one async client each, all stepping for ``seconds``: steps/s and PSS per session."""
    runtime = get_runtime(tier)
    servers: list[Server] = []
    try:
        with WarmPool("echo", runtime, size=sessions, parallel=2) as pool:
            pool.wait_full(300)
            servers = [pool.acquire() for _ in range(sessions)]
        pss = sum(_tree_pss(getattr(s, "pid", None)) for s in servers)
        steps = asyncio.run(_drive(servers, seconds))
    finally:
        for server in servers:
            server.stop()
    return {"sessions": sessions, "steps_per_s": steps / seconds,
            "pss_per_session_kib": pss / sessions / 1024 if pss else None}


async def _drive(servers: list[Server], seconds: float) -> int:
    clients: list[AsyncEnvClient[Any, Any]] = [s.async_client() for s in servers]
    count = 0
    stop = time.monotonic() + 0.5 + seconds

    async def run(client: AsyncEnvClient[Any, Any]) -> None:
        nonlocal count
        async with client:
            await client.reset()
            warm_until = time.monotonic() + 0.5
            while time.monotonic() < warm_until:
                await client.step({"message": "hi"})
            while time.monotonic() < stop:
                await client.step({"message": "hi"})
                count += 1

    await asyncio.gather(*(run(c) for c in clients))
    return count


def _tree_pss(root: int | None) -> int:
    """PSS in bytes of ``root`` and all its descendants."""
    if root is None:
        return 0
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read()
                ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            except (OSError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs and a 16-session concurrency run")
    parser.add_argument("--only", default="cold,warm,concurrent,docker", help="comma-separated subset")
    parser.add_argument("--tiers", default="inprocess,subprocess,sandbox,sandbox-bwrap",
                        help="tiers for cold and warm (sandbox-bwrap: cold only)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    only = set(args.only.split(","))
    tiers = [t for t in args.tiers.split(",") if not t.startswith("sandbox") or sandbox_available()[0]]
    runs = 5 if args.quick else 15
    out: dict[str, Any] = {"measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}, "targets": TARGETS}
    if "cold" in only:
        out["cold"] = {tier: cold(tier, runs) for tier in tiers}
    if "warm" in only:
        out["warm"] = {tier: warm(tier, runs * 2) for tier in tiers if tier not in ("inprocess", "sandbox-bwrap")}
    if "concurrent" in only and sandbox_available()[0]:
        out["concurrent"] = {"sandbox": concurrent("sandbox", 16 if args.quick else 64, 2.0 if args.quick else 4.0)}
    if "docker" in only:
        try:
            from benchmarks.runtimes_docker import docker_figures
        except ImportError as exc:
            out["docker"] = {"skipped": f"benchmarks/runtimes_docker.py is not available: {exc}"}
        else:
            out["docker"] = docker_figures(quick=args.quick)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(out, indent=2) + "\n")
    print_table(out)
    return 0


def print_table(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Corral runtimes, {out['measured_at']}")
    for column in ("measurement", "p50", "floor", "target", "met?"):
        table.add_column(column, justify="right" if column != "measurement" else "left")
    for tier, row in out.get("cold", {}).items():
        target = TARGETS["cold_sandbox_ms"] if tier.startswith("sandbox") else None
        name = {"sandbox": "sandbox (zygote)" if row.get("zygote") else "sandbox (no zygote here)"}.get(tier, tier)
        table.add_row(f"cold start to first reset, {name}", f"{row['p50_ms']:.1f} ms", f"{row['min_ms']:.1f} ms",
                      *_verdict(row["p50_ms"], target))
        if row.get("zygote"):
            table.add_row("  zygote start, once per owner process", f"{row['zygote_start_ms']:.0f} ms", "", "", "")
    for tier, row in out.get("warm", {}).items():
        table.add_row(f"warm-pool acquire + first reset, {tier}", f"{row['p50_ms']:.2f} ms", "",
                      *_verdict(row["p50_ms"], TARGETS["warm_ms"]))
    for tier, row in out.get("concurrent", {}).items():
        table.add_row(f"{row['sessions']} concurrent {tier} sessions, steps/s", f"{row['steps_per_s']:,.0f}", "", "",
                      "")
        if row["pss_per_session_kib"]:
            table.add_row(f"{row['sessions']} concurrent {tier} sessions, PSS per session",
                          f"{row['pss_per_session_kib'] / 1024:.1f} MiB", "", "", "")
    for name, row in out.get("docker", {}).items():
        if isinstance(row, dict) and "p50_ms" in row:
            table.add_row(f"docker: {name}", f"{row['p50_ms']:.0f} ms", "",
                          *_verdict(row["p50_ms"], row.get("target_ms")))
    Console().print(table)


def _verdict(value: float, target: float | None) -> tuple[str, str]:
    if target is None:
        return "", ""
    return f"≤ {target:g} ms", "✅ yes" if value <= target else "❌ no"


if __name__ == "__main__":
    sys.exit(main())
