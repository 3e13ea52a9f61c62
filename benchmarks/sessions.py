"""Concurrent sessions: open N sessions, hold them, and read the server's memory.

Each case gets a fresh server. Idle RSS is read after one warm-up session (connect, reset, step, close), so
lazily imported code is already loaded; RSS with sessions is read once every load process has reported
its sessions open, after a short settle. Per-session memory is ``(RSS_with - RSS_idle) / opened``.

- ``ws``: one bare WebSocket per session (connect + reset each, no compression, OpenEnv dialect), spread
  over several load processes (RLIMIT_NOFILE raised to its hard limit in each).
- ``mux`` (Corral only): corral/1 over a few connections, ``sessions(k)`` + ``group.reset()`` in chunks.

Opening stops at a time bound; whatever opened by then is what is reported.
"""

from __future__ import annotations

import time
from typing import Any

from .servers import LoadProcess, Server, corral_server, peer_server, proc_threads
from .settings import Settings


def _warm(url: str) -> None:
    from websockets.sync.client import connect

    ws_url = url.replace("http://", "ws://") + "/ws"
    with connect(ws_url, compression=None, open_timeout=30) as ws:
        ws.send('{"type":"reset","data":{}}')
        ws.recv(30)
        ws.send('{"type":"step","data":{"message":"hello"}}')
        ws.recv(30)
        ws.send('{"type":"close"}')
    time.sleep(0.3)


def hold_case(impl: str, mode: str, n: int, *, open_timeout: float, procs: int) -> dict[str, Any]:
    capacity = n + 512
    server: Server = (corral_server("echo", "--capacity", str(capacity)) if impl == "corral"
                      else peer_server(max_sessions=capacity))
    server.start()
    loads: list[LoadProcess] = []
    try:
        _warm(server.url)
        rss_idle = server.rss_kib()
        threads_idle = proc_threads(server.pid)
        t0 = time.perf_counter()
        if mode == "mux":
            connections = max(1, -(-n // 2500))
            loads.append(LoadProcess(impl, server.url, "hold", "--sessions", n, "--mode", "mux",
                                     "--connections", connections, "--timeout", open_timeout,
                                     "--hold", open_timeout + 120))
        else:
            share = [n // procs + (i < n % procs) for i in range(procs)]
            loads.extend(LoadProcess(impl, server.url, "hold", "--sessions", k, "--mode", "ws",
                                     "--timeout", open_timeout, "--hold", open_timeout + 120)
                         for k in share if k)
        events = [load.wait_event("opened", open_timeout + 60) for load in loads]
        open_wall_s = time.perf_counter() - t0
        time.sleep(1.0)  # settle
        alive = server.alive()
        rss_with = server.rss_kib() if alive else 0
        threads_with = proc_threads(server.pid) if alive else 0
        for load in loads:
            load.release()
        results = [load.wait_event("result", 120) for load in loads]
        opened = sum(int(e["opened"]) for e in events)
        failures: dict[str, int] = {}
        for e in events:
            for key, count in e["failures"].items():
                failures[key] = failures.get(key, 0) + count
        alive_pct = [r["alive_after_hold_pct"] for r in results]
        return {
            "impl": impl,
            "mode": mode,
            "sessions": n,
            "load_processes": len(loads),
            "opened": opened,
            "opened_pct": round(100 * opened / n, 2),
            "failures": failures,
            "open_wall_s": round(open_wall_s, 2),
            "sessions_per_s": round(opened / open_wall_s, 1) if open_wall_s else None,
            "alive_after_hold_pct": min(alive_pct) if alive_pct else 0,
            "server_alive": alive,
            "rss_idle_mib": round(rss_idle / 1024, 1),
            "rss_with_mib": round(rss_with / 1024, 1),
            "rss_per_session_kib": round((rss_with - rss_idle) / opened, 2) if opened and alive else None,
            "threads_idle": threads_idle,
            "threads_with": threads_with,
        }
    finally:
        for load in loads:
            load.stop()
        server.stop()


def concurrent_sessions(settings: Settings, impls: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in settings.hold_sessions:
        procs = 1 if n <= 2000 else 2
        cases = [("corral", "ws"), ("corral", "mux"), ("peer", "ws")]
        for impl, mode in cases:
            if impl in impls:
                out[f"{impl}/{mode}/{n}"] = hold_case(impl, mode, n, open_timeout=settings.hold_timeout_s,
                                                      procs=procs)
    return out
