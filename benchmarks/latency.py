"""Sequential round trips: step latency per client kind, HTTP step, and session open (connect + reset).

One load process per implementation and benchmark; it repeats the measurement ``runs`` times on fresh
connections and the reported p50/p99 are the medians over those runs.
"""

from __future__ import annotations

import statistics
from typing import Any

from .servers import run_load, running
from .settings import Settings


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "p50_us": round(statistics.median(r["p50_us"] for r in runs), 1),
        "p99_us": round(statistics.median(r["p99_us"] for r in runs), 1),
        "runs": runs,
    }


def latency(settings: Settings, impls: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for impl in impls:
        with running(impl) as server:
            result = run_load(impl, server.url, "latency", "--steps", settings.latency_steps,
                              "--warmup", settings.latency_warmup, "--runs", settings.runs)
        out[impl] = {kind: summarize(result[kind]) for kind in ("sync", "async", "raw")}
    return out


def http_step(settings: Settings, impls: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for impl in impls:
        with running(impl) as server:
            result = run_load(impl, server.url, "http", "--requests", settings.http_requests,
                              "--warmup", settings.http_warmup, "--runs", settings.runs)
        out[impl] = summarize(result["http"])
        out[impl]["stateful"] = impl == "corral"
    return out


def open_time(settings: Settings, impls: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for impl in impls:
        with running(impl) as server:
            result = run_load(impl, server.url, "open", "--count", settings.open_count, "--runs", settings.runs)
        out[impl] = summarize(result["runs"])
        if result.get("mux"):
            out[f"{impl}/mux"] = summarize(result["mux"])
        if result.get("socket"):
            out[f"{impl}/socket"] = summarize(result["socket"])
    return out
