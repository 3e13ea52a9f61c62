"""Corral vs openenv-core 0.3.0, side by side, in one run on this machine.

    .venv/bin/python benchmarks/run.py                     # full run (~6 min on 2 cores)
    .venv/bin/python benchmarks/run.py --quick             # smoke run, small counts (~1 min)
    .venv/bin/python benchmarks/run.py --only latency,cpu  # some benchmarks
    .venv/bin/python benchmarks/run.py --quick --only latency --no-peer --results /tmp/x.json

Prints a table (Corral | OpenEnv | ratio | target | met?) and writes the numbers to
``benchmarks/results/latest.json`` (a full run), ``quick.json`` (``--quick``) or ``partial.json``
(``--only``/``--no-peer``). A full run with the peer also rewrites the results section of
``docs/benchmarks.md``. Every server and load process is a subprocess on 127.0.0.1, stopped by its handle.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.blob import blob  # noqa: E402
from benchmarks.floor import floor  # noqa: E402
from benchmarks.latency import http_step, latency, open_time  # noqa: E402
from benchmarks.report import build_rows, markdown_table, rich_table  # noqa: E402
from benchmarks.servers import child_env, corral_python, machine_info, peer_info  # noqa: E402
from benchmarks.sessions import concurrent_sessions  # noqa: E402
from benchmarks.settings import FULL, QUICK, Settings  # noqa: E402
from benchmarks.startup import startup  # noqa: E402
from benchmarks.throughput import batched, cpu, throughput  # noqa: E402

Bench = Callable[[Settings, list[str]], dict[str, Any]]

#: Run order: cheap and latency-sensitive first, the 10,000-session holds (and their memory churn) last.
BENCHMARKS: dict[str, Bench] = {
    "floor": floor,
    "startup": startup,
    "latency": latency,
    "http": http_step,
    "open": open_time,
    "cpu": cpu,
    "throughput": throughput,
    "batched": batched,
    "blob": blob,
    "sessions": concurrent_sessions,
}

DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, about a minute (smoke test)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--no-peer", action="store_true", help="measure Corral only")
    parser.add_argument("--results", type=Path, default=None, help="where to write the JSON results")
    parser.add_argument("--no-docs", action="store_true", help="never rewrite docs/benchmarks.md")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to SECONDS for the 1-minute load average to drop below 0.5")
    args = parser.parse_args(argv)

    from rich.console import Console

    console = Console(width=max(Console().width, 150))
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    names = only or list(BENCHMARKS)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    with contextlib.ExitStack() as stack:
        return _run(args, console, names, stack)


def _run(args: argparse.Namespace, console: Any, names: list[str], stack: contextlib.ExitStack) -> int:
    settings = QUICK if args.quick else FULL
    impls = ["corral"] if args.no_peer else ["corral", "peer"]
    complete = not args.only.strip() and not args.no_peer
    command = "  ".join([".venv/bin/python benchmarks/run.py", *map(shlex.quote, args.argv)])
    if args.wait_quiet > 0:
        until = time.monotonic() + args.wait_quiet
        while os.getloadavg()[0] >= 0.5 and time.monotonic() < until:
            time.sleep(5)
    if not os.environ.get("CORRAL_BENCH_SRC"):
        # Benchmark one consistent copy of src/ even if the checkout changes while the run is in progress.
        snapshot = stack.enter_context(tempfile.TemporaryDirectory(prefix="corral-bench-src-"))
        shutil.copytree(ROOT / "src", Path(snapshot) / "src", ignore=shutil.ignore_patterns("__pycache__"))
        os.environ["CORRAL_BENCH_SRC"] = str(Path(snapshot) / "src")
        stack.callback(os.environ.pop, "CORRAL_BENCH_SRC", None)
    check = subprocess.run([corral_python(), "-c", "import corral, corral.server, corral.client, corral.cli.main"],
                           env=child_env(), capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        where = os.environ.get("CORRAL_BENCH_SRC")
        console.print(f"[red]corral does not import from {where}:[/]\n{check.stderr[-2000:]}")
        return 2
    info = machine_info()
    info["corral_source"] = source_info()
    if "peer" in impls:
        info.update(peer_info())
    console.print(f"[bold]Corral benchmarks[/] ({'quick' if args.quick else 'full'}): {', '.join(names)}; "
                  f"{info['nproc']} CPUs, {info['cpu']}, load {info['load_avg_at_start']}")

    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    started = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        console.print(f"[cyan]▶ {name}[/] …")
        try:
            results[name] = BENCHMARKS[name](settings, impls)
        except Exception as exc:  # one broken benchmark must not lose the others' numbers
            errors[name] = f"{type(exc).__name__}: {exc}"
            console.print(f"[red]✘ {name} failed:[/] {errors[name]}")
            console.print(traceback.format_exc(), markup=False, highlight=False)
        timings[name] = round(time.perf_counter() - t0, 1)
        console.print(f"  done in {timings[name]} s")
    elapsed = round(time.perf_counter() - started, 1)
    info["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    rows = build_rows(results)
    title = f"Corral vs OpenEnv 0.3.0 — {info['date']}, {info['nproc']} CPUs ({'quick' if args.quick else 'full'})"
    console.print(rich_table(rows, title))
    console.print(f"total {elapsed} s; per benchmark: {timings}")

    out_path = args.results or ROOT / "benchmarks" / "results" / (
        "quick.json" if args.quick else "latest.json" if complete else "partial.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "command": command,
        "quick": args.quick,
        "machine": info,
        "elapsed_s": elapsed,
        "timings_s": timings,
        "errors": errors,
        "rows": [row.as_dict() for row in rows],
        "results": results,
    }
    out_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    console.print(f"wrote {out_path}")

    if complete and not args.quick and not args.no_docs:
        write_docs(markdown_table(rows), info, command, elapsed)
        console.print(f"updated {DOCS}")
    return 1 if errors else 0


def source_info() -> str:
    """The commit benchmarked, and whether src/ had uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes in src/' if dirty else ''}"


def write_docs(table: str, info: dict[str, Any], command: str, elapsed: float) -> None:
    machine = (f"{info['nproc']} CPUs ({info['cpu']}), {info['memory_gib']} GiB RAM, Linux {info['kernel']}; "
               f"Corral on Python {info['python_corral']}; peer openenv-core {info.get('openenv_core')} on Python "
               f"{info.get('python_peer')} (uvicorn {info.get('peer_uvicorn')}, websockets "
               f"{info.get('peer_websockets')}); load average (1, 5, 15 min) {info['load_avg_at_start']} at start, "
               f"{info.get('load_avg_at_end')} at end")
    section = "\n".join([
        START,
        f"Measured {info['date']} in one run of {elapsed:.0f} s:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Machine: {machine}. Corral source: {info.get('corral_source')}.",
        "",
        table,
        "",
        "Ratios are how many times better Corral is (peer ÷ Corral for times and memory, Corral ÷ peer for "
        "rates). Raw numbers, every run and the settings are in `benchmarks/results/latest.json`.",
        END,
    ])
    text = DOCS.read_text() if DOCS.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOCS.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
