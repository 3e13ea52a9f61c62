"""A 1 MiB binary observation per step (blocking clients, sequential steps, p50 per step).

Corral serves ``benchmarks.envs:BlobEnvironment`` and is measured with the JSON codec (bytes as base64
text, decoded back to bytes by the typed client) and with ``corral.v1+msgpack`` (bytes raw). The peer
serves the same logic written for openenv-core (``benchmarks/peer_blob_server.py``: base64 text, because
its JSON replies cannot carry bytes) through its own ``.sync()`` client; the base64 is decoded client-side.
"""

from __future__ import annotations

from typing import Any

from .latency import summarize
from .servers import Server, corral_server, peer_python, run_load
from .settings import Settings


def blob(settings: Settings, impls: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    common = ("--steps", settings.blob_steps, "--warmup", settings.blob_warmup, "--runs", settings.runs)
    if "corral" in impls:
        with corral_server("benchmarks.envs:BlobEnvironment") as server:
            for codec in ("json", "msgpack"):
                result = run_load("corral", server.url, "blob", "--codec", codec, *common, timeout=600)
                out[f"corral/{codec}"] = summarize(result["runs"])
    if "peer" in impls:
        server = Server("peer", [peer_python(), "benchmarks/peer_blob_server.py", "--max-sessions", "16"])
        with server:
            result = run_load("peer", server.url, "blob", *common, timeout=600)
            out["peer/json-base64"] = summarize(result["runs"])
    return out
