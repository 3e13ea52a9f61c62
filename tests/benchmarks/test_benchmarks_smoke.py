"""The benchmark scripts still run: the cheap benchmarks, quick mode, Corral only. No timing assertions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_floor_and_latency_benchmarks_produce_numbers(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--only", "floor,latency", "--no-peer",
         "--no-docs", "--results", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=100,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    document = json.loads(out.read_text())
    assert document["errors"] == {}
    latency = document["results"]["latency"]["corral"]
    for kind in ("sync", "async", "raw"):
        assert latency[kind]["p50_us"] > 0
        assert latency[kind]["p99_us"] >= latency[kind]["p50_us"]
    rows = {row["metric"]: row for row in document["rows"]}
    assert rows["step round trip p50, async client"]["corral"] > 0
    assert rows["step round trip p50, async client"]["peer"] is None
    floor = document["results"]["floor"]
    assert floor["p50_us"] > 0
    assert floor["open_p50_us"] > 0
    assert floor["typed_batch_steps_s_2_cores"] == round(2e6 / floor["typed_batch_step_cpu_us"])
    assert rows["machine floor: typed batched echo, both ends, no I/O, 2 cores (steps/s at most)"]["corral"] > 0
