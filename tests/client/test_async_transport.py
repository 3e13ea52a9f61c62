"""The async transport, frame by frame against a scripted server, and idle against a real one."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close, Frame, Opcode

from corral import AsyncEnvClient
from corral.client.async_transport import ProtocolConnection, protocol_connect
from corral.errors import CapacityReached, TransportError

from ..support import BlobEnv, BlobObservation
from .scripted import ScriptedServer, fragments, refusal


async def ashut(server: ScriptedServer, ws: ProtocolConnection) -> None:
    with server.answering():  # the server's side of the closing handshake
        await ws.close()


async def connected(server: ScriptedServer, subprotocols: tuple[str, ...] = (), **options: Any) -> ProtocolConnection:
    return await protocol_connect(server.url, subprotocols, {}, 5, **options)


async def test_text_binary_and_partial_frames(scripted: Any) -> None:
    server = scripted(subprotocols=["corral.v1"])
    ws = await connected(server, ("corral.v1",))
    try:
        assert ws.subprotocol == "corral.v1"
        peer = server.peer
        await ws.send("héllo")
        await ws.send(b"\x00\xff")
        frames = await asyncio.to_thread(peer.frames_until, Opcode.BINARY)
        assert [bytes(f.data) for f in frames] == ["héllo".encode(), b"\x00\xff"]
        data = peer.write(Frame(Opcode.BINARY, b"\x01" * 5000), *fragments("frag ✓", 6))
        peer.raw(data[:100])
        reading = asyncio.ensure_future(ws.recv())
        await asyncio.sleep(0.05)
        assert not reading.done()
        peer.raw(data[100:])
        assert await reading == b"\x01" * 5000
        assert await ws.recv() == "frag ✓"
    finally:
        await ashut(server, ws)


async def test_recv_is_cancellation_safe(scripted: Any) -> None:
    server = scripted()
    ws = await connected(server)
    try:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.05)
        server.peer.send("kept")
        assert await asyncio.wait_for(ws.recv(), 5) == "kept"
    finally:
        await ashut(server, ws)


async def test_listen_hands_over_every_message_then_the_close(scripted: Any) -> None:
    server = scripted()
    ws = await connected(server)
    peer = server.peer
    peer.send("before listen")
    await asyncio.sleep(0.05)
    got: list[str | bytes] = []
    closed = asyncio.Event()
    ws.listen(got.append, closed.set)
    assert got == ["before listen"]
    peer.send("one")
    peer.send(b"two")
    peer.close(1000)
    await asyncio.to_thread(peer.frames_until, Opcode.CLOSE)  # then the server closes the socket
    await asyncio.wait_for(closed.wait(), 5)
    assert got == ["before listen", "one", b"two"]
    with pytest.raises(ConnectionClosedOK):
        await ws.send("too late")
    await ws.close()


async def test_listen_on_a_link_already_gone_reports_the_close_later(scripted: Any) -> None:
    server = scripted()
    ws = await connected(server)
    server.peer.sock.close()
    with pytest.raises(ConnectionClosedError):
        await asyncio.wait_for(ws.recv(), 5)
    calls: list[str] = []
    ws.listen(calls.append, lambda: calls.append("closed"))
    assert calls == []  # never from inside listen
    await asyncio.sleep(0)
    assert calls == ["closed"]
    await ws.close()


async def test_pings_both_ways_and_a_silent_server_is_dropped(scripted: Any) -> None:
    server = scripted()
    ws = await connected(server, ping_interval=0.1)
    try:
        peer = server.peer
        peer.ping(b"hi")
        frames = await asyncio.to_thread(peer.frames_until, Opcode.PONG)
        assert (Opcode.PONG, b"hi") in [(f.opcode, bytes(f.data)) for f in frames]
        await asyncio.to_thread(peer.frames_until, Opcode.PING)  # a silent server gets pinged
        closed = asyncio.Event()
        ws.listen(lambda message: None, closed.set)
        await asyncio.wait_for(closed.wait(), 2)  # and dropped once it stops answering
    finally:
        await ashut(server, ws)


async def test_close_is_a_clean_handshake(scripted: Any) -> None:
    server = scripted()
    ws = await connected(server)
    with server.answering() as seen:
        await asyncio.wait_for(ws.close(), 1)
    assert [Close.parse(f.data).code for f in seen if f.opcode is Opcode.CLOSE] == [1000]
    assert ws.transport is not None
    assert ws.transport.is_closing()
    await ws.close()


async def test_refusals_and_a_silent_handshake(scripted: Any) -> None:
    body = orjson.dumps({"code": "CAPACITY_REACHED", "message": "full"})
    server = scripted(refuse=refusal(503, body, Retry_After="2"))
    with pytest.raises(CapacityReached) as info:
        await protocol_connect(server.url, (), {}, 5)
    assert info.value.retry_after == 2.0
    server = scripted(silent=True)
    with pytest.raises(TransportError, match="cannot connect"):
        await protocol_connect(server.url, (), {}, 0.2)

async def test_an_idle_client_answers_the_servers_pings(start_server: Any) -> None:
    """As for the blocking client: idle past the server's ping timeout, still on the same connection."""
    server = start_server(lease_s=3)
    async with AsyncEnvClient(server.url, resume=False) as env:
        await env.reset()
        link = env._ws
        await asyncio.sleep(2.2)
        result = await env.step({"message": "still here"})
        assert result.observation.model_dump()["echoed_message"] == "still here"
        assert env._ws is link


@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_large_messages_both_ways(start_server: Any, codec: str) -> None:
    size = 2 << 20
    async with AsyncEnvClient(start_server(BlobEnv).url, codec=codec, observation_type=BlobObservation) as env:
        await env.reset()
        assert (await env.step({"size": size})).observation.blob == BlobEnv.blob(size)
    async with AsyncEnvClient(start_server().url, codec=codec) as echo:
        await echo.reset()
        assert (await echo.step({"message": "y" * size})).observation.model_dump()["message_length"] == size
