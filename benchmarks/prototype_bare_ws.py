"""A measuring stick, not a product: the echo environment behind a bare WebSocket protocol, no ASGI.

One ``asyncio.Protocol`` per connection on uvloop, ``websockets``' sans-I/O ``ServerProtocol`` for framing,
and each text frame answered synchronously inside ``data_received`` (decode, validate, step, envelope,
encode, one ``transport.write`` for everything the read produced). OpenEnv dialect only (reset/step/state,
no ids, no errors beyond the minimum). It shows how much of Corral's per-step cost is the ASGI layer
(uvicorn's protocol, its queue and task per message, the ASGI message dicts) rather than Corral's own work.

    PYTHONPATH=. .venv/bin/python benchmarks/prototype_bare_ws.py --port 8123
    PYTHONPATH=. .venv/bin/python benchmarks/run.py --only latency,cpu --no-peer   # with CORRAL_BENCH_BARE=1
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from corral.envs.echo import EchoAction, EchoEnvironment
from corral.protocol import Dialect, envelope

_HEALTH = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n{"status":"healthy"}'


class BareWebSocket(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.conn = ServerProtocol(max_size=16 << 20)
        self.env: EchoEnvironment | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if self.env is None and data.startswith(b"GET /health"):
            self.transport.write(_HEALTH)
            self.transport.close()
            return
        conn.receive_data(data)
        for event in conn.events_received():
            if isinstance(event, Request):
                conn.send_response(conn.accept(event))
                self.env = EchoEnvironment()
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                conn.send_text(self.handle(event.data))
        out = conn.data_to_send()
        if out:
            self.transport.write(b"".join(out))
        if conn.close_expected():
            self.transport.close()

    def handle(self, raw: bytes) -> bytes:
        assert self.env is not None
        frame = orjson.loads(raw)
        kind = frame.get("type")
        if kind == "step":
            result = self.env.step(EchoAction.model_validate(frame.get("data")))
        elif kind == "reset":
            result = self.env.reset(**(frame.get("data") or {}))
        elif kind == "state":
            return orjson.dumps({"type": "state", "data": self.env.state.model_dump(mode="json")})
        else:
            return orjson.dumps({"type": "error", "data": {"message": "unsupported", "code": "UNKNOWN_TYPE"}})
        return orjson.dumps({"type": "observation", "data": envelope(result, Dialect.COMPAT)})


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(BareWebSocket, host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--capacity", type=int, default=0, help="ignored (accepted like corral serve)")
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
