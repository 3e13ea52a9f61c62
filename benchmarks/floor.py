"""The machine's floors, measured in every run: what no Python implementation goes below on this machine.

- A bare uvloop TCP echo (no WebSocket, no framework): a server process whose ``asyncio.Protocol`` writes
  back every read, and a client in this process sending 60-byte messages one at a time. It reports the
  round trip p50 and the server's CPU per round trip, and the p50 of a fresh connection: connect, one
  round trip, close (the floor under a session open).
- The typed work of one batched echo step, in this process with no I/O: the client's request built and
  packed, the server's unpack, action validation, ``EchoEnvironment.step``, observation dump and pack, the
  client's unpack and validation into ``StepResult``. Its CPU per step bounds batched stepping from above:
  two cores can do at most ``2 / cpu`` steps per second.

These floors drift with the host (a VM's syscall and wake-up costs), so compare them across runs before
comparing the others.
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
    opens = []
    for _ in range(max(20, n // 50)):
        t0 = time.perf_counter_ns()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(message)
        await reader.readexactly(len(message))
        opens.append(time.perf_counter_ns() - t0)
        writer.close()
        await writer.wait_closed()
    return {"p50_us": round(statistics.median(samples) / 1e3, 1),
            "server_cpu_per_rt_us": round((cpu1 - cpu0) / n * 1e6, 1),
            "open_p50_us": round(statistics.median(opens) / 1e3, 1)}


def typed_batch_step_us(batch: int = 64, rounds: int = 1000) -> float:
    """CPU µs per step of the typed work of a batched echo step at both ends, with no I/O (best of 3)."""
    import msgpack
    from pydantic import TypeAdapter

    from corral import StepResult
    from corral.envs.echo import EchoAction, EchoEnvironment, EchoObservation

    env = EchoEnvironment()
    env.reset()
    action = EchoAction(message="hello")
    results = TypeAdapter(list[StepResult[EchoObservation]])

    def one_batch() -> None:
        items = [{"session": i, "id": i, "data": action.model_dump()} for i in range(batch)]
        request = msgpack.packb({"type": "step_many", "id": 1, "data": {"items": items}})
        replies = []
        for item in msgpack.unpackb(request)["data"]["items"]:
            result = env.step(EchoAction.model_validate(item["data"]))
            replies.append({"type": "observation", "id": item["id"], "session": item["session"], "data": {
                "observation": result.observation.model_dump(), "reward": result.reward,
                "terminated": result.terminated, "truncated": result.truncated, "info": result.info}})
        reply = msgpack.unpackb(msgpack.packb({"type": "batch", "id": 1, "data": {"results": replies}}))
        results.validate_python([r["data"] for r in reply["data"]["results"]])

    for _ in range(rounds // 10):
        one_batch()
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        for _ in range(rounds):
            one_batch()
        best = min(best, (time.process_time() - t0) / (rounds * batch) * 1e6)
    return round(best, 2)


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
    typed_us = typed_batch_step_us(rounds=200 if settings.quick else 1000)
    return {
        "p50_us": statistics.median(r["p50_us"] for r in runs),
        "server_cpu_per_rt_us": statistics.median(r["server_cpu_per_rt_us"] for r in runs),
        "open_p50_us": statistics.median(r["open_p50_us"] for r in runs),
        "typed_batch_step_cpu_us": typed_us,
        "typed_batch_steps_s_2_cores": round(2e6 / typed_us),
        "runs": runs,
    }
