"""Docker: cold start to first reset, ours against openenv-core 0.3.0's own ``from_docker_image``.

    .venv/bin/python benchmarks/runtimes_docker.py              # 7 runs each (~1 min once images exist)
    .venv/bin/python benchmarks/runtimes_docker.py --quick      # 3 runs each
    .venv/bin/python benchmarks/runtimes_docker.py --cold-build # also time image builds from nothing (~2 min)

Ours: ``DockerRuntime().start(image)`` (container create and start, then the readiness round trip) plus
the caller's own client connect and first reset, on the image ``build_image("echo")`` makes. Each side
first starts one untimed container (so a just-built image's files are in the page cache for both); every
timed start is a new container. Peer:
``await GenericEnvClient.from_docker_image(image)`` plus its first reset, run in the peer venv
(``scripts/peer-venv``), on an equivalent image: FROM the same base, openenv-core 0.3.0 installed from
wheels pinned by peer/constraints.txt, serving the peer's echo environment (peer/echo_server.py) on port
8000 as openenv's images do. Both images are built locally (cached by content). Every container started
here is removed. ``docker_figures`` is what benchmarks/runtimes.py calls; results go to
``benchmarks/results/runtimes_docker.json`` when run directly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.servers import peer_python  # noqa: E402
from corral.errors import CorralError  # noqa: E402
from corral.runtime.docker import DockerRuntime, connect  # noqa: E402
from corral.runtime.images import BuiltImage, Recipe, base_image, build_image, build_recipe, cache_dir  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "runtimes_docker.json"
TARGET_MS = 1000.0
PEER_TAG = "corral-bench/openenv-echo:0.3.0"
PEER_RECIPE = Recipe(
    requirements=("openenv-core==0.3.0", "uvicorn[standard]", "websockets", "requests"),
    constraints=tuple(line.strip() for line in (ROOT / "peer" / "constraints.txt").read_text().splitlines()
                      if line.strip() and not line.startswith("#")),
    files=(("echo_server.py", ROOT / "peer" / "echo_server.py"),
           ("peer_docker_server.py", ROOT / "benchmarks" / "peer_docker_server.py")),
    command=("python", "-u", "/opt/app/peer_docker_server.py"),
    include_corral=False,
)

PEER_DRIVER = r"""
import asyncio, json, sys, time
from openenv.core import GenericEnvClient

async def main(image, runs):
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        client = await GenericEnvClient.from_docker_image(image)
        try:
            await client.reset()
            samples.append((time.perf_counter() - started) * 1000)
        finally:
            await client.close()  # stops and removes the container
    print(json.dumps(samples))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def cold_corral(image: str, runs: int) -> dict[str, Any]:
    runtime = DockerRuntime()
    samples = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        with runtime.start(image) as server, server.client() as env:
            env.reset()
            samples.append((time.perf_counter() - started) * 1000)
    return _row(samples[1:])


def cold_openenv(image: str, runs: int) -> dict[str, Any]:
    client = connect()
    try:
        done = subprocess.run([peer_python(), "-c", PEER_DRIVER, image, str(runs + 1)], capture_output=True, text=True,
                              timeout=120 + 30 * runs, check=False, cwd=ROOT)
    finally:  # a driver that died mid-run may have left its container
        for container in client.containers.list(all=True, filters={"ancestor": image}):
            container.remove(force=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-1000:]}
    return _row(json.loads(done.stdout.strip().splitlines()[-1])[1:])


def _row(samples: list[float]) -> dict[str, Any]:
    return {"p50_ms": statistics.median(samples), "min_ms": min(samples), "target_ms": TARGET_MS,
            "runs_ms": [round(s, 1) for s in samples]}


def _image_row(built: BuiltImage) -> dict[str, Any]:
    return {"tag": built.tag, "size_mb": round(built.size_mb, 1), "seconds": round(built.seconds, 2),
            "cached": built.cached}


def cold_builds() -> dict[str, Any]:
    """Build the base and the echo image from nothing (their cached mmdebstrap tarball and images removed),
    then again with nothing changed."""
    client = connect()
    echo = build_image("echo", client=client)
    base = base_image(client=client)
    for tag in (echo.tag, base.tag):
        client.images.remove(tag, force=True)
    shutil.rmtree(cache_dir() / "base", ignore_errors=True)
    cold_base = base_image(client=client)
    cold_echo = build_image("echo", client=client)
    again = build_image("echo", client=client)
    return {"base_cold": _image_row(cold_base), "echo_cold_on_cached_base": _image_row(cold_echo),
            "echo_cached": _image_row(again)}


def docker_figures(quick: bool = False, cold_build: bool = False) -> dict[str, Any]:
    """The Docker rows of benchmarks/runtimes.py (``{"skipped": why}`` without a Docker daemon)."""
    try:
        connect()
    except CorralError as exc:
        return {"skipped": str(exc)}
    runs = 3 if quick else 7
    out: dict[str, Any] = {}
    if cold_build:
        out["builds"] = cold_builds()
    ours = build_image("echo")
    peer = build_recipe(PEER_RECIPE, tag=PEER_TAG)
    out["images"] = {"corral_echo": _image_row(ours), "openenv_echo": _image_row(peer)}
    out["cold start to first reset, corral DockerRuntime"] = cold_corral(ours.tag, runs)
    out["cold start to first reset, openenv from_docker_image"] = cold_openenv(peer.tag, runs)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 runs each instead of 7")
    parser.add_argument("--cold-build", action="store_true", help="also time image builds from nothing")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    out = {"measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           **docker_figures(quick=args.quick, cold_build=args.cold_build)}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(out, indent=2) + "\n")
    print_table(out)
    return 0


def print_table(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    if "skipped" in out:
        Console().print(f"Docker figures skipped: {out['skipped']}")
        return
    table = Table(title=f"Docker runtimes, {out['measured_at']}")
    for column in ("measurement", "p50", "min", "target", "met?"):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    for name, row in out.items():
        if isinstance(row, dict) and "p50_ms" in row:
            met = "✅ yes" if row["p50_ms"] <= row["target_ms"] else "❌ no"
            table.add_row(name, f"{row['p50_ms']:.0f} ms", f"{row['min_ms']:.0f} ms", f"≤ {row['target_ms']:g} ms",
                          met)
        elif isinstance(row, dict) and "error" in row:
            table.add_row(name, "failed", "", "", row["error"][-80:])
    images = {**out.get("images", {}), **out.get("builds", {})}
    for name, image in images.items():
        state = "cached" if image["cached"] else "built"
        table.add_row(f"image {name} ({image['size_mb']:.0f} MB)", f"{image['seconds']:.1f} s", "", "", state)
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
