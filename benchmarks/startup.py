"""Process start to healthy: spawn the server, poll ``GET /health`` every 2 ms, stop at the first 200."""

from __future__ import annotations

import statistics
from typing import Any

from .servers import server_for
from .settings import Settings


def startup(settings: Settings, impls: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for impl in impls:
        runs = []
        for _ in range(settings.startup_runs):
            server = server_for(impl)
            try:
                server.start()
                runs.append(round(server.healthy_s, 3))
            finally:
                server.stop()
        out[impl] = {"healthy_s": statistics.median(runs), "runs": runs}
    return out
