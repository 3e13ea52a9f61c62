"""Load generator: drives one server with one implementation's own clients and prints one JSON line.

Runs under either interpreter: the peer venv's (``--impl peer``: openenv-core's ``GenericEnvClient``, its
``.sync()`` wrapper, raw ``websockets``) or Corral's (``--impl corral``: ``EnvClient``, ``AsyncEnvClient``,
raw ``websockets``). It imports nothing from this repository except, for ``blob`` against Corral,
``benchmarks.envs`` (PYTHONPATH must hold the repository root). The async parts run on uvloop when the
interpreter has it (both venvs do). Every loop is bounded in count and in time; traffic goes only to
the ``--url`` given (127.0.0.1).

    python load.py --impl corral --url http://127.0.0.1:PORT latency --steps 2000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import http.client
import json
import os
import resource
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

ACTION = {"message": "hello"}
STEP_FRAME = json.dumps({"type": "step", "data": ACTION})
RESET_FRAME = json.dumps({"type": "reset", "data": {}})
Json = dict[str, Any]


# --- helpers -----------------------------------------------------------------------------------


def stats_us(samples_ns: list[int]) -> Json:
    q = statistics.quantiles(samples_ns, n=100, method="inclusive")
    return {
        "n": len(samples_ns),
        "p50_us": round(statistics.median(samples_ns) / 1e3, 1),
        "p90_us": round(q[89] / 1e3, 1),
        "p99_us": round(q[98] / 1e3, 1),
        "mean_us": round(statistics.fmean(samples_ns) / 1e3, 1),
    }


def cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 when no pid."""
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ws_url(url: str) -> str:
    parts = urlsplit(url)
    return f"ws://{parts.netloc}/ws"


def run_async(coro: Awaitable[Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


def loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def emit(obj: Json) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# --- clients of each implementation ------------------------------------------------------------


def async_client(impl: str, url: str) -> Any:
    if impl == "peer":
        from openenv.core import GenericEnvClient

        return GenericEnvClient(base_url=url)
    from corral import AsyncEnvClient

    return AsyncEnvClient(url)


def sync_client(impl: str, url: str) -> Any:
    if impl == "peer":
        from openenv.core import GenericEnvClient

        return GenericEnvClient(base_url=url).sync()
    from corral import EnvClient

    return EnvClient(url)


async def raw_connect(url: str, open_timeout: float = 30.0) -> Any:
    from websockets.asyncio.client import connect

    # The same bare client for both servers: no subprotocol (OpenEnv dialect), no compression.
    return await connect(ws_url(url), compression=None, max_size=None, open_timeout=open_timeout,
                         ping_interval=None)


async def raw_open(url: str, open_timeout: float = 30.0) -> Any:
    """Connect and reset over a bare WebSocket; raise unless the reply is an observation."""
    ws = await raw_connect(url, open_timeout)
    try:
        await ws.send(RESET_FRAME)
        reply = json.loads(await asyncio.wait_for(ws.recv(), open_timeout))
        if reply.get("type") != "observation":
            raise RuntimeError(f"reset refused: {str(reply)[:200]}")
    except BaseException:
        await ws.close()
        raise
    return ws


async def raw_step(ws: Any) -> None:
    await ws.send(STEP_FRAME)
    reply = await ws.recv()
    if '"observation"' not in reply:
        raise RuntimeError(f"step failed: {reply[:200]}")


# --- latency: sequential step round trips ------------------------------------------------------


def _timed(step: Callable[[], Any], n: int, warmup: int) -> list[int]:
    for _ in range(warmup):
        step()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        step()
        samples.append(clock() - t0)
    return samples


async def _atimed(step: Callable[[], Awaitable[Any]], n: int, warmup: int) -> list[int]:
    for _ in range(warmup):
        await step()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        await step()
        samples.append(clock() - t0)
    return samples


async def _latency_async(impl: str, url: str, n: int, warmup: int) -> list[int]:
    async with async_client(impl, url) as env:
        await env.reset()
        return await _atimed(lambda: env.step(ACTION), n, warmup)


async def _latency_raw(url: str, n: int, warmup: int) -> list[int]:
    ws = await raw_open(url)
    try:
        return await _atimed(lambda: raw_step(ws), n, warmup)
    finally:
        await ws.close()


def _latency_sync(impl: str, url: str, n: int, warmup: int) -> list[int]:
    with sync_client(impl, url) as env:
        env.reset()
        return _timed(lambda: env.step(ACTION), n, warmup)


def latency(args: argparse.Namespace) -> Json:
    """Each run: a fresh connection per client kind, ``--warmup`` steps, then ``--steps`` timed steps."""
    kinds = args.clients.split(",")
    out: Json = {kind: [] for kind in kinds}
    for _ in range(args.runs):
        for kind in kinds:
            cpu0 = time.process_time()
            if kind == "sync":
                samples = _latency_sync(args.impl, args.url, args.steps, args.warmup)
            elif kind == "async":
                samples = run_async(_latency_async(args.impl, args.url, args.steps, args.warmup))
            else:
                samples = run_async(_latency_raw(args.url, args.steps, args.warmup))
            stats = stats_us(samples)
            # Client process CPU (all threads) per step, connect and warm-up included: a rough client cost.
            stats["client_cpu_us"] = round((time.process_time() - cpu0) / (args.steps + args.warmup) * 1e6, 1)
            out[kind].append(stats)
    return out


# --- HTTP step -----------------------------------------------------------------------------------


def http_steps(args: argparse.Namespace) -> Json:
    """Keep-alive ``http.client`` requests. Corral: POST /reset, then POST /step with X-Session-Id.
    Peer: POST /step (stateless: each request builds and drops an environment)."""
    parts = urlsplit(args.url)
    body = json.dumps({"action": ACTION}).encode()
    runs = []
    for _ in range(args.runs):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if args.impl == "corral":
            conn.request("POST", "/reset", body=b"{}", headers=headers)
            response = conn.getresponse()
            response.read()
            headers["X-Session-Id"] = response.getheader("X-Session-Id") or ""

        def step(conn: http.client.HTTPConnection = conn, headers: dict[str, str] = headers) -> None:
            conn.request("POST", "/step", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"POST /step answered {response.status}")

        runs.append(stats_us(_timed(step, args.requests, args.warmup)))
        conn.close()
    return {"http": runs}


# --- aggregate throughput: N async clients on one loop ------------------------------------------


async def _open_clients(impl: str, url: str, n: int, parallel: int = 32) -> list[Any]:
    gate = asyncio.Semaphore(parallel)

    async def one() -> Any:
        async with gate:
            env = async_client(impl, url)
            await env.connect()
            await env.reset()
            return env

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def _close_clients(clients: list[Any]) -> None:
    async def one(env: Any) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(env.close(), 10)

    await asyncio.gather(*(one(env) for env in clients))


async def _throughput_run(args: argparse.Namespace, sessions: int) -> Json:
    clients = await _open_clients(args.impl, args.url, sessions)
    count = 0
    errors: list[str] = []
    stop = False
    target: int | None = None
    reached = asyncio.Event()

    async def worker(env: Any) -> None:
        nonlocal count
        step = env.step
        try:
            while not stop:
                await step(ACTION)
                count += 1
                if target is not None and count >= target:
                    reached.set()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])

    tasks = [asyncio.ensure_future(worker(env)) for env in clients]
    await asyncio.sleep(args.warmup)
    c0, t0, cpu0 = count, time.perf_counter(), cpu_seconds(args.server_pid)
    if args.total:
        target = c0 + args.total
        await asyncio.wait_for(reached.wait(), args.timeout)
    else:
        await asyncio.sleep(args.duration)
    c1, t1, cpu1 = count, time.perf_counter(), cpu_seconds(args.server_pid)
    stop = True
    await asyncio.wait(tasks, timeout=30)
    await _close_clients(clients)
    steps = c1 - c0
    return {
        "sessions": sessions,
        "steps": steps,
        "seconds": round(t1 - t0, 3),
        "steps_per_s": round(steps / (t1 - t0), 1),
        "server_cpu_s": round(cpu1 - cpu0, 3),
        "server_cpu_per_step_us": round((cpu1 - cpu0) / steps * 1e6, 1) if steps and args.server_pid else None,
        "errors": errors[:5],
    }


def throughput(args: argparse.Namespace) -> Json:
    """For each session count in ``--sessions`` (comma-separated), ``--runs`` windows with fresh clients."""
    levels = [int(n) for n in str(args.sessions).split(",")]
    return {"levels": {str(n): [run_async(_throughput_run(args, n)) for _ in range(args.runs)] for n in levels},
            "loop": loop_name()}


# --- batched stepping (Corral only): many sessions on one connection ---------------------------


async def _batched_async(args: argparse.Namespace) -> Json:
    """``--inflight`` groups of sessions/inflight each on ONE AsyncEnvClient connection, stepped concurrently,
    so the server works on one batch while the client decodes another."""
    from corral import AsyncEnvClient

    k = args.inflight
    sizes = [args.sessions // k + (i < args.sessions % k) for i in range(k)]
    async with AsyncEnvClient(args.url, codec=args.codec, open_session=False) as env:
        groups = [await env.sessions(size) for size in sizes]
        for group in groups:
            await group.reset()
        count = 0
        stop = False

        async def drive(group: Any) -> None:
            nonlocal count
            actions = [ACTION] * len(group)
            while not stop:
                await group.step(actions)
                count += len(actions)

        tasks = [asyncio.ensure_future(drive(group)) for group in groups]
        await asyncio.sleep(args.warmup)
        c0, t0, cpu0 = count, time.perf_counter(), cpu_seconds(args.server_pid)
        await asyncio.sleep(args.duration)
        c1, t1, cpu1 = count, time.perf_counter(), cpu_seconds(args.server_pid)
        stop = True
        await asyncio.gather(*tasks)
        for group in groups:
            await group.close()
    steps = c1 - c0
    return {
        "sessions": args.sessions,
        "codec": args.codec,
        "client": f"async, {k} batches in flight",
        "steps": steps,
        "seconds": round(t1 - t0, 3),
        "steps_per_s": round(steps / (t1 - t0), 1),
        "server_cpu_per_step_us": round((cpu1 - cpu0) / steps * 1e6, 2) if steps and args.server_pid else None,
    }


def batched(args: argparse.Namespace) -> Json:
    from corral import EnvClient

    if args.inflight > 1:
        return {"runs": [run_async(_batched_async(args)) for _ in range(args.runs)]}
    runs = []
    for _ in range(args.runs):
        with EnvClient(args.url, codec=args.codec, open_session=False) as env, env.sessions(args.sessions) as group:
            group.reset()
            actions = [ACTION] * args.sessions
            until = time.perf_counter() + args.warmup
            while time.perf_counter() < until:
                group.step(actions)
            iters = 0
            t0, cpu0 = time.perf_counter(), cpu_seconds(args.server_pid)
            until = t0 + args.duration
            while time.perf_counter() < until:
                group.step(actions)
                iters += 1
            t1, cpu1 = time.perf_counter(), cpu_seconds(args.server_pid)
        steps = iters * args.sessions
        runs.append({
            "sessions": args.sessions,
            "codec": args.codec,
            "client": "blocking, 1 batch in flight",
            "batches": iters,
            "steps": steps,
            "seconds": round(t1 - t0, 3),
            "steps_per_s": round(steps / (t1 - t0), 1),
            "batch_p50_ms": round((t1 - t0) / max(iters, 1) * 1e3, 2),
            "server_cpu_per_step_us": round((cpu1 - cpu0) / steps * 1e6, 2) if steps and args.server_pid else None,
        })
    return {"runs": runs}


# --- session open: connect + reset, sequential ----------------------------------------------------


async def _open_run(impl: str, url: str, count: int) -> list[int]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(count):
        env = async_client(impl, url)
        t0 = clock()
        await env.connect()
        await env.reset()
        samples.append(clock() - t0)
        await env.close()
    return samples


async def _open_mux_run(url: str, count: int) -> list[int]:
    """Corral only: open a session on an already open corral/1 connection and reset it, in one ``open``
    frame that carries the reset (``sessions(1, reset=True)``)."""
    from corral import AsyncEnvClient

    samples = []
    clock = time.perf_counter_ns
    async with AsyncEnvClient(url, open_session=False) as env:
        for _ in range(count):
            t0 = clock()
            group = await env.sessions(1, reset=True)
            samples.append(clock() - t0)
            await group.close()
    return samples


def _socket_open_run(url: str, count: int) -> list[int]:
    """Connect + reset with no client library at all: a blocking socket, the upgrade request and the reset
    frame written by hand (no subprotocol, so the OpenEnv dialect on both servers), the reply read until
    the reset's observation frame is whole. What is left is the server's share of a session open."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = RESET_FRAME.encode()
    reset = bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload  # masked with a zero key
    samples = []
    clock = time.perf_counter_ns
    for _ in range(count):
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        t0 = clock()
        with socket.create_connection((host, port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                data += _recv(sock)
            head, _, data = data.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"upgrade refused: {head[:200]!r}")
            sock.sendall(reset)
            while not _whole_frame(data):
                data += _recv(sock)
            samples.append(clock() - t0)
            if b'"observation"' not in data:
                raise RuntimeError(f"expected an observation, got {data[:200]!r}")
    return samples


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("the server closed the connection during a session open")
    return chunk


def _whole_frame(data: bytes) -> bool:
    """Whether ``data`` holds one whole unmasked server frame."""
    if len(data) < 2:
        return False
    size, at = data[1] & 0x7F, 2
    if size == 126:
        size, at = int.from_bytes(data[2:4], "big"), 4
    elif size == 127:
        size, at = int.from_bytes(data[2:10], "big"), 10
    return len(data) >= at + size


def open_time(args: argparse.Namespace) -> Json:
    runs, mux, bare = [], [], []
    for _ in range(args.runs):
        run_async(_open_run(args.impl, args.url, args.warmup))
        runs.append(stats_us(run_async(_open_run(args.impl, args.url, args.count))))
        _socket_open_run(args.url, args.warmup)
        bare.append(stats_us(_socket_open_run(args.url, args.count)))
        if args.impl == "corral":
            mux.append(stats_us(run_async(_open_mux_run(args.url, args.count))))
    return {"runs": runs, "mux": mux, "socket": bare}


# --- hold many sessions ----------------------------------------------------------------------------


async def _hold_ws(args: argparse.Namespace) -> Json:
    """Open ``--sessions`` bare WebSockets (connect + reset each), report, hold until told, then close."""
    gate = asyncio.Semaphore(args.parallel)
    deadline = time.monotonic() + args.timeout
    opened: list[Any] = []
    failures: dict[str, int] = {}

    async def one() -> None:
        if time.monotonic() > deadline:
            failures["deadline"] = failures.get("deadline", 0) + 1
            return
        async with gate:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failures["deadline"] = failures.get("deadline", 0) + 1
                return
            try:
                opened.append(await asyncio.wait_for(raw_open(args.url, remaining), remaining))
            except Exception as exc:
                key = type(exc).__name__
                failures[key] = failures.get(key, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(args.sessions)))
    open_s = time.perf_counter() - t0
    return await _hold_report(args, len(opened), failures, open_s, lambda: _check_ws(opened), lambda: _close_ws(opened))


async def _check_ws(opened: list[Any]) -> int:
    sample = opened[:: max(1, len(opened) // 100)][:100]
    alive = 0
    for ws in sample:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(raw_step(ws), 10)
            alive += 1
    return round(100 * alive / len(sample), 1) if sample else 0


async def _close_ws(opened: list[Any]) -> None:
    gate = asyncio.Semaphore(200)

    async def one(ws: Any) -> None:
        async with gate:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 5)

    await asyncio.gather(*(one(ws) for ws in opened))


async def _hold_mux(args: argparse.Namespace) -> Json:
    """Corral only: ``--sessions`` sessions over ``--connections`` corral/1 connections (open + reset_many)."""
    from corral import AsyncEnvClient

    per = [args.sessions // args.connections + (i < args.sessions % args.connections)
           for i in range(args.connections)]
    clients: list[Any] = []
    groups: list[Any] = []
    failures: dict[str, int] = {}
    t0 = time.perf_counter()
    for count in per:
        env = AsyncEnvClient(args.url, open_session=False, codec="msgpack")
        try:
            await env.connect()
            clients.append(env)
            made = 0
            while made < count:  # open in chunks so no single frame gets huge
                chunk = min(1000, count - made)
                group = await env.sessions(chunk)
                await group.reset()
                groups.append(group)
                made += chunk
        except Exception as exc:
            key = type(exc).__name__
            failures[key] = failures.get(key, 0) + 1
    open_s = time.perf_counter() - t0
    opened = sum(len(g) for g in groups)

    async def check() -> float:
        ok = total = 0
        for group in groups:
            total += len(group)
            with contextlib.suppress(Exception):
                ok += sum(1 for r in await group.step([ACTION] * len(group)) if r is not None)
        return round(100 * ok / total, 1) if total else 0

    async def close() -> None:
        for env in clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(env.close(), 30)

    return await _hold_report(args, opened, failures, open_s, check, close)


async def _hold_report(args: argparse.Namespace, opened: int, failures: dict[str, int], open_s: float,
                       check: Callable[[], Awaitable[float]], close: Callable[[], Awaitable[None]]) -> Json:
    emit({"event": "opened", "opened": opened, "failures": failures, "open_s": round(open_s, 2)})
    # Hold until the orchestrator has read the server's memory (a line on stdin), at most --hold seconds.
    loop = asyncio.get_running_loop()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), args.hold)
    alive_pct = await check()
    t0 = time.perf_counter()
    await close()
    return {"sessions": args.sessions, "opened": opened, "failures": failures, "open_s": round(open_s, 2),
            "alive_after_hold_pct": alive_pct, "close_s": round(time.perf_counter() - t0, 2)}


def hold(args: argparse.Namespace) -> Json:
    raise_nofile()
    return run_async(_hold_mux(args) if args.mode == "mux" else _hold_ws(args))  # type: ignore[no-any-return]


# --- a 1 MiB binary observation per step ----------------------------------------------------------


def blob(args: argparse.Namespace) -> Json:
    """Corral: EnvClient with ``--codec`` and the typed observation (so JSON base64 is decoded back to bytes).
    Peer: GenericEnvClient's sync wrapper; the observation's base64 text is decoded here."""
    action = {"size": args.size}
    runs = []
    for _ in range(args.runs):
        if args.impl == "corral":
            from benchmarks.envs import BlobObservation
            from corral import EnvClient

            with EnvClient(args.url, codec=args.codec, observation_type=BlobObservation) as env:
                env.reset()

                def step(env: Any = env) -> None:
                    data = env.step(action).observation.data
                    if len(data) != args.size:
                        raise RuntimeError(f"got {len(data)} bytes, expected {args.size}")

                samples = _timed(step, args.steps, args.warmup)
        else:
            with sync_client("peer", args.url) as env:
                env.reset()

                def step(env: Any = env) -> None:
                    data = base64.b64decode(env.step(action).observation["data"])
                    if len(data) != args.size:
                        raise RuntimeError(f"got {len(data)} bytes, expected {args.size}")

                samples = _timed(step, args.steps, args.warmup)
        runs.append(stats_us(samples))
    return {"runs": runs, "codec": args.codec if args.impl == "corral" else "json-base64", "size": args.size}


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("corral", "peer"), required=True)
    parser.add_argument("--url", required=True)
    sub = parser.add_subparsers(dest="mode_name", required=True)

    p = sub.add_parser("latency")
    p.add_argument("--clients", default="sync,async,raw")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--runs", type=int, default=3)
    p.set_defaults(fn=latency)

    p = sub.add_parser("http")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--runs", type=int, default=3)
    p.set_defaults(fn=http_steps)

    p = sub.add_parser("throughput")
    p.add_argument("--sessions", required=True, help="session counts, comma-separated")
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--total", type=int, default=0, help="measure a fixed number of steps instead of a duration")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--server-pid", type=int, default=None)
    p.add_argument("--timeout", type=float, default=120.0)
    p.set_defaults(fn=throughput)

    p = sub.add_parser("batched")
    p.add_argument("--sessions", type=int, required=True)
    p.add_argument("--codec", choices=("json", "msgpack"), default="msgpack")
    p.add_argument("--inflight", type=int, default=1, help=">1: async client, that many groups stepped at once")
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--server-pid", type=int, default=None)
    p.set_defaults(fn=batched)

    p = sub.add_parser("open")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=3)
    p.set_defaults(fn=open_time)

    p = sub.add_parser("hold")
    p.add_argument("--sessions", type=int, required=True)
    p.add_argument("--mode", choices=("ws", "mux"), default="ws")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--parallel", type=int, default=100, help="connects in flight at once")
    p.add_argument("--timeout", type=float, default=120.0, help="stop opening after this many seconds")
    p.add_argument("--hold", type=float, default=60.0, help="longest wait for the release line on stdin")
    p.set_defaults(fn=hold)

    p = sub.add_parser("blob")
    p.add_argument("--codec", choices=("json", "msgpack"), default="msgpack")
    p.add_argument("--size", type=int, default=1 << 20)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=3)
    p.set_defaults(fn=blob)

    args = parser.parse_args()
    result = args.fn(args)
    emit({"event": "result", "impl": args.impl, "mode": args.mode_name, "python": sys.version.split()[0],
          **result})


if __name__ == "__main__":
    main()
