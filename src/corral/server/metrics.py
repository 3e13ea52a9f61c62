"""Counters and a latency histogram, exposed as Prometheus text at ``/metrics``."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    __slots__ = ("_bucket_counts", "errors", "sessions_active", "sessions_opened", "step_count", "step_sum")

    def __init__(self) -> None:
        self.sessions_active = 0
        self.sessions_opened = 0
        self.step_count = 0
        self.step_sum = 0.0
        self._bucket_counts = [0] * (len(_BUCKETS) + 1)
        self.errors: Counter[str] = Counter()

    def observe_step(self, seconds: float) -> None:
        self.step_count += 1
        self.step_sum += seconds
        self._bucket_counts[bisect_left(_BUCKETS, seconds)] += 1

    def render(self, env_name: str) -> str:
        label = f'env="{env_name}"'
        lines = [
            "# HELP corral_sessions_active Sessions currently open.",
            "# TYPE corral_sessions_active gauge",
            f"corral_sessions_active{{{label}}} {self.sessions_active}",
            "# HELP corral_sessions_opened_total Sessions opened since start.",
            "# TYPE corral_sessions_opened_total counter",
            f"corral_sessions_opened_total{{{label}}} {self.sessions_opened}",
            "# HELP corral_steps_total Steps served.",
            "# TYPE corral_steps_total counter",
            f"corral_steps_total{{{label}}} {self.step_count}",
            "# HELP corral_step_latency_seconds Time spent in the environment's step.",
            "# TYPE corral_step_latency_seconds histogram",
        ]
        cumulative = 0
        for bound, count in zip((*_BUCKETS, float("inf")), self._bucket_counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'corral_step_latency_seconds_bucket{{{label},le="{le}"}} {cumulative}')
        lines.append(f"corral_step_latency_seconds_sum{{{label}}} {self.step_sum}")
        lines.append(f"corral_step_latency_seconds_count{{{label}}} {self.step_count}")
        lines.append("# HELP corral_errors_total Error replies by code.")
        lines.append("# TYPE corral_errors_total counter")
        for code, count in sorted(self.errors.items()):
            name = getattr(code, "value", code)  # an ErrorCode member formats as "ErrorCode.X" on Python 3.11+
            lines.append(f'corral_errors_total{{{label},code="{name}"}} {count}')
        return "\n".join(lines) + "\n"
