"""The machine's floor, measured in every run: a bare uvloop TCP echo (no WebSocket, no framework).

A server process whose ``asyncio.Protocol`` writes back every read, and a client in this process sending
60-byte messages one at a time. It reports the round trip p50 and the server's CPU per round trip:
what a Python server on this machine cannot go below, whatever protocol it speaks. This floor drifts
with the host (a VM's syscall and wake-up costs), so compare it across runs before comparing the others.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
from typing import Any

from .servers import ROOT, child_env, corral_python, free_port, proc_cpu_seconds
from .settings import Settings

_SERVER = """
import asyncio, sys, uvloop
class Echo(asyncio.Protocol):
    def connection_made(self, transport): self.transport = transport
    def data_received(self, data): self.transport.write(data)
async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()
uvloop.run(main())
"""


async def _client(port: int, pid: int, n: int, warmup: int = 500) -> dict[str, float]:
    deadline = time.monotonic() + 30
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)
    message = b"x" * 60
    for _ in range(warmup):
        writer.write(message)
        await reader.readexactly(len(message))
    samples = []
    cpu0 = proc_cpu_seconds(pid)
    for _ in range(n):
        t0 = time.perf_counter_ns()
        writer.write(message)
        await reader.readexactly(len(message))
        samples.append(time.perf_counter_ns() - t0)
    cpu1 = proc_cpu_seconds(pid)
    writer.close()
    return {"p50_us": round(statistics.median(samples) / 1e3, 1),
            "server_cpu_per_rt_us": round((cpu1 - cpu0) / n * 1e6, 1)}


def floor(settings: Settings, impls: list[str]) -> dict[str, Any]:
    import uvloop

    port = free_port()
    proc = subprocess.Popen([corral_python(), "-c", _SERVER, str(port)], cwd=ROOT, env=child_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        n = 2000 if settings.quick else 10_000
        runs = [uvloop.run(_client(port, proc.pid, n)) for _ in range(settings.runs)]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return {
        "p50_us": statistics.median(r["p50_us"] for r in runs),
        "server_cpu_per_rt_us": statistics.median(r["server_cpu_per_rt_us"] for r in runs),
        "runs": runs,
    }
