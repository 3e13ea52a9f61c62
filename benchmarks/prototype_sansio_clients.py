"""A measuring stick for the clients: what a step round trip costs with less machinery than ``websockets`` adds.

Against a fresh ``corral serve echo`` (OpenEnv dialect frames, no compression), sequential steps through:

- ``websockets.sync`` (a background reader thread per connection: what ``corral.EnvClient`` uses today);
- a blocking socket driving ``websockets``' sans-I/O ``ClientProtocol`` directly (no thread hop);
- ``websockets.asyncio`` (an assembler and, in ``AsyncEnvClient``, a reader task per connection);
- an ``asyncio.Protocol`` with the sans-I/O ``ClientProtocol`` that resolves the waiting future from
  ``data_received`` (no reader task, no assembler).

    .venv/bin/python benchmarks/prototype_sansio_clients.py [--steps 5000] [--runs 3]

Prints p50 round trip and the client process's CPU per step for each. Nothing here is a product.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.servers import running  # noqa: E402

STEP = orjson.dumps({"type": "step", "data": {"message": "hello"}})
RESET = orjson.dumps({"type": "reset", "data": {}})


def _measure(step: Callable[[], Any], n: int, warmup: int = 300) -> tuple[float, float]:
    for _ in range(warmup):
        step()
    samples = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        step()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1e3, (time.process_time() - cpu0) / n * 1e6


async def _ameasure(step: Callable[[], Any], n: int, warmup: int = 300) -> tuple[float, float]:
    for _ in range(warmup):
        await step()
    samples = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await step()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1e3, (time.process_time() - cpu0) / n * 1e6


def websockets_sync(port: int, n: int) -> tuple[float, float]:
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/ws", compression=None) as ws:
        ws.send(RESET.decode())
        ws.recv()

        def step() -> None:
            ws.send(STEP.decode())
            ws.recv()

        return _measure(step, n)


def sansio_blocking(port: int, n: int) -> tuple[float, float]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws"))
        proto.send_request(proto.connect())
        sock.sendall(b"".join(proto.data_to_send()))

        def events() -> list[Any]:
            while True:
                received = proto.events_received()
                if received:
                    return received
                proto.receive_data(sock.recv(1 << 16))

        events()  # the 101 response

        def request(data: bytes) -> bytes:
            proto.send_text(data)
            sock.sendall(b"".join(proto.data_to_send()))
            while True:
                for event in events():
                    if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                        return bytes(event.data)

        request(RESET)
        return _measure(lambda: orjson.loads(request(STEP)), n)


async def websockets_asyncio(port: int, n: int) -> tuple[float, float]:
    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{port}/ws", compression=None) as ws:
        await ws.send(RESET.decode())
        await ws.recv()

        async def step() -> None:
            await ws.send(STEP.decode())
            await ws.recv()

        return await _ameasure(step, n)


class _SansIOProtocol(asyncio.Protocol):
    def __init__(self, uri: str) -> None:
        self.proto = ClientProtocol(parse_uri(uri))
        self.waiters: list[asyncio.Future[Any]] = []
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.proto.send_request(self.proto.connect())
        transport.write(b"".join(self.proto.data_to_send()))

    def data_received(self, data: bytes) -> None:
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT and self.waiters:
                    self.waiters.pop(0).set_result(orjson.loads(event.data))
            elif not self.opened.done():
                self.opened.set_result(None)

    async def request(self, data: bytes) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        self.proto.send_text(data)
        self.transport.write(b"".join(self.proto.data_to_send()))
        return await future


async def sansio_asyncio(port: int, n: int) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(lambda: _SansIOProtocol(f"ws://127.0.0.1:{port}/ws"),
                                                    "127.0.0.1", port)
    try:
        await proto.opened
        await proto.request(RESET)
        return await _ameasure(lambda: proto.request(STEP), n)
    finally:
        transport.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import uvloop

    kinds: dict[str, Callable[[int, int], tuple[float, float]]] = {
        "websockets.sync (EnvClient's transport)": websockets_sync,
        "sans-I/O over a blocking socket": sansio_blocking,
        "websockets.asyncio (AsyncEnvClient's transport)": lambda p, n: uvloop.run(websockets_asyncio(p, n)),
        "sans-I/O asyncio.Protocol": lambda p, n: uvloop.run(sansio_asyncio(p, n)),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in kinds}
    with running("corral") as server:
        for _ in range(args.runs):
            for name, fn in kinds.items():
                results[name].append(fn(server.port, args.steps))
    for name, runs in results.items():
        p50 = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"{name:50s} p50 {p50:6.1f} µs   client CPU {cpu:5.1f} µs/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
