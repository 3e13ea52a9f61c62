"""Where the time goes: py-spy samples of a Corral server (or of the load process) under a steady load.

    .venv/bin/pip install py-spy                        # once
    .venv/bin/python benchmarks/profile.py              # server, 64 async-client sessions, 8 s
    .venv/bin/python benchmarks/profile.py --target client --sessions 1
    .venv/bin/python benchmarks/profile.py --mode batched --sessions 256

Prints the top functions by self time and by inclusive time (share of on-CPU samples; idle time in
epoll is not sampled) and writes the collapsed stacks to ``benchmarks/results/profile-*.txt`` (feed them
to any flame-graph tool). py-spy must be able to ptrace the process (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.servers import ROOT as REPO  # noqa: E402
from benchmarks.servers import child_env, corral_server, load_argv, peer_server  # noqa: E402


def summarize(collapsed: str, top: int) -> str:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    by_area: collections.Counter[str] = collections.Counter()
    for frame, count in self_time.items():
        by_area[_area(frame)] += count
    out = [f"{total} samples on CPU", "", "self time by area:"]
    out += [f"  {100 * c / total:5.1f}%  {area}" for area, c in by_area.most_common()]
    out += ["", "self time:"]
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in self_time.most_common(top)]
    out += ["", "inclusive time:"]
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(top)]
    return "\n".join(out)


_AREAS = (
    ("asyncio/runners.py", "event loop (uvloop C code: epoll, recv syscalls, task switches)"),
    ("websockets_sansio_impl.py:506)", "socket write (transport.write syscall)"),
    ("uvicorn/", "uvicorn ASGI WebSocket protocol"),
    ("websockets/", "websockets library (frame parse/build)"),
    ("asyncio/", "asyncio Python code (tasks, futures, queues, locks)"),
    ("pydantic", "pydantic (validate, construct, dump)"),
    ("corral/envs/", "the environment itself"),
    ("corral/server/", "Corral server dispatch"),
    ("corral/protocol/", "Corral codec / envelope"),
    ("corral/client/", "Corral client"),
    ("corral/", "Corral (other)"),
    ("msgpack", "msgpack"),
    ("openenv/", "openenv-core"),
    ("starlette/", "starlette / fastapi"),
    ("fastapi/", "starlette / fastapi"),
    ("concurrent/futures", "thread pool"),
    ("threading.py", "threads"),
)


def _area(frame: str) -> str:
    for needle, name in _AREAS:
        if needle in frame:
            return name
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("corral", "peer"), default="corral")
    parser.add_argument("--target", choices=("server", "client"), default="server")
    parser.add_argument("--mode", choices=("throughput", "batched", "latency", "open"), default="throughput")
    parser.add_argument("--sessions", type=int, default=64)
    parser.add_argument("--codec", default="msgpack")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=250)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--native", action="store_true",
                        help="also sample C frames (uvloop, pydantic-core, the GC, the kernel's syscalls)")
    args = parser.parse_args()

    py_spy = shutil.which("py-spy") or str(REPO / ".venv" / "bin" / "py-spy")
    server = corral_server("echo", "--capacity", "4096") if args.impl == "corral" else peer_server(4096)
    server.start()
    load = None
    try:
        span = str(args.seconds + 6)
        if args.mode == "throughput":
            extra = ["--sessions", str(args.sessions), "--duration", span, "--warmup", "1", "--runs", "1"]
        elif args.mode == "batched":
            extra = ["--sessions", str(args.sessions), "--codec", args.codec, "--duration", span, "--runs", "1"]
        elif args.mode == "latency":
            extra = ["--clients", "async", "--steps", "200000", "--warmup", "100", "--runs", "1"]
        else:
            extra = ["--count", "100000", "--runs", "1"]
        load = subprocess.Popen(load_argv(args.impl, server.url, args.mode, *extra), cwd=REPO, env=child_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3.0 if args.impl == "corral" else 7.0)  # imports, connects, warm-up
        pid = server.pid if args.target == "server" else load.pid
        name = f"profile-{args.impl}-{args.target}-{args.mode}-{args.sessions}.txt"
        out = REPO / "benchmarks" / "results" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        sampling = ["--native"] if args.native else ["--nonblocking"]
        subprocess.run([py_spy, "record", "--pid", str(pid), "--duration", str(int(args.seconds)), "--rate",
                        str(args.rate), "--format", "raw", "--output", str(out), *sampling],
                       check=True, capture_output=True, timeout=args.seconds + 60)
        print(f"{args.impl} {args.target}, {args.mode}, {args.sessions} sessions; stacks in {out}")
        print(summarize(out.read_text(), args.top))
    finally:
        if load is not None and load.poll() is None:
            load.kill()
        if load is not None:
            load.wait(10)
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
