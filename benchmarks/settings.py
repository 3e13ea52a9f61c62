"""Counts and durations for a full run and for ``--quick`` (a smoke run of about a minute)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    quick: bool
    runs: int = 3
    latency_steps: int = 2000
    latency_warmup: int = 200
    http_requests: int = 2000
    http_warmup: int = 200
    throughput_sessions: tuple[int, ...] = (1, 8, 64, 256)
    throughput_duration_s: float = 3.0
    throughput_warmup_s: float = 1.0
    cpu_sessions: tuple[int, ...] = (1, 64)
    cpu_steps: int = 40_000
    batched_sessions: tuple[int, ...] = (64, 256)
    batched_codecs: tuple[str, ...] = ("json", "msgpack")
    batched_duration_s: float = 2.0
    open_count: int = 200
    hold_sessions: tuple[int, ...] = (1_000, 10_000)
    hold_timeout_s: float = 120.0
    startup_runs: int = 3
    blob_steps: int = 100
    blob_warmup: int = 10


FULL = Settings(quick=False)
QUICK = Settings(
    quick=True,
    runs=1,
    latency_steps=300,
    latency_warmup=50,
    http_requests=200,
    http_warmup=20,
    throughput_sessions=(1, 8, 64),
    throughput_duration_s=0.5,
    throughput_warmup_s=0.3,
    cpu_sessions=(1, 64),
    cpu_steps=1000,
    batched_sessions=(64,),
    batched_codecs=("msgpack",),
    batched_duration_s=0.5,
    open_count=20,
    hold_sessions=(200,),
    hold_timeout_s=30.0,
    startup_runs=1,
    blob_steps=10,
    blob_warmup=2,
)
