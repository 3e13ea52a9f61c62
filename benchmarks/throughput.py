"""Aggregate steps/s with N concurrent sessions, server CPU per step, and Corral's batched stepping.

Method (the same for both implementations): one load process, one event loop (uvloop), N async clients
of the implementation under test (openenv-core ``GenericEnvClient`` / Corral ``AsyncEnvClient``), one
session and one WebSocket each, every client stepping in a closed loop. After a warm-up, steps completed
in a fixed window are counted. Server CPU is the server process's utime + stime (all threads) read from
``/proc/PID/stat`` by the load process around the window.
"""

from __future__ import annotations

import statistics
from typing import Any

from .servers import corral_server, run_load, running
from .settings import Settings


def _csv(values: tuple[int, ...]) -> str:
    return ",".join(map(str, values))


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def throughput(settings: Settings, impls: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for impl in impls:
        per: dict[str, Any] = {}
        with running(impl, max_sessions=max(settings.throughput_sessions) + 64) as server:
            result = run_load(impl, server.url, "throughput", "--sessions", _csv(settings.throughput_sessions),
                              "--duration", settings.throughput_duration_s,
                              "--warmup", settings.throughput_warmup_s, "--runs", settings.runs,
                              "--server-pid", server.pid, timeout=600)
            for n, runs in result["levels"].items():
                per[n] = {
                    "steps_per_s": _median(runs, "steps_per_s"),
                    "server_cpu_per_step_us": _median(runs, "server_cpu_per_step_us"),
                    "runs": runs,
                }
        out[impl] = per
    return out


def cpu(settings: Settings, impls: list[str]) -> dict[str, Any]:
    """Server CPU for a fixed number of steps (after warm-up), divided by that number."""
    out: dict[str, Any] = {}
    for impl in impls:
        per: dict[str, Any] = {}
        with running(impl, max_sessions=max(settings.cpu_sessions) + 64) as server:
            result = run_load(impl, server.url, "throughput", "--sessions", _csv(settings.cpu_sessions),
                              "--total", settings.cpu_steps, "--warmup", 0.5, "--runs", settings.runs,
                              "--server-pid", server.pid, timeout=600)
            for n, runs in result["levels"].items():
                per[n] = {
                    "server_cpu_per_step_us": _median(runs, "server_cpu_per_step_us"),
                    "steps": settings.cpu_steps,
                    "runs": runs,
                }
        out[impl] = per
    return out


def batched(settings: Settings, impls: list[str]) -> dict[str, Any]:
    """Corral only, one connection: a blocking EnvClient with ``sessions(n)`` and ``group.step`` in a closed
    loop (per codec), and an AsyncEnvClient with two groups of n/2 stepped concurrently (2 batches in flight)."""
    if "corral" not in impls:
        return {}
    per: dict[str, Any] = {}
    server = corral_server("echo", "--capacity", "4096")
    with server:
        configs = [(codec, 1) for codec in settings.batched_codecs] + [("msgpack", 2)]
        for codec, inflight in configs:
            for n in settings.batched_sessions:
                result = run_load("corral", server.url, "batched", "--sessions", n, "--codec", codec,
                                  "--inflight", inflight, "--duration", settings.batched_duration_s,
                                  "--runs", settings.runs, "--server-pid", server.pid, timeout=600)
                runs = result["runs"]
                per[f"{n}/{codec}/{inflight}"] = {
                    "sessions": n,
                    "codec": codec,
                    "client": runs[0]["client"],
                    "steps_per_s": _median(runs, "steps_per_s"),
                    "server_cpu_per_step_us": _median(runs, "server_cpu_per_step_us"),
                    "runs": runs,
                }
    return {"corral": per}
