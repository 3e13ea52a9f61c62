"""The blocking transport, frame by frame against a scripted server, and idle against a real one."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close, Frame, Opcode

from corral import EnvClient
from corral.client.sync_transport import _WATCHDOG, SocketConnection, socket_connect
from corral.errors import CapacityReached, TransportError

from ..support import BlobEnv, BlobObservation
from .scripted import ScriptedServer, fragments, refusal


def blocking(server: ScriptedServer, subprotocols: tuple[str, ...] = (), **options: Any) -> SocketConnection:
    ws = socket_connect(server.url, subprotocols, {}, 5, **options)
    assert isinstance(ws, SocketConnection)
    return ws


def shut(server: ScriptedServer, ws: SocketConnection) -> None:
    with server.answering():  # the server's side of the closing handshake
        ws.close()


def test_text_and_binary_both_ways(scripted: Any) -> None:
    server = scripted(subprotocols=["corral.v1"])
    ws = blocking(server, ("corral.v1",))
    try:
        assert ws.subprotocol == "corral.v1"
        ws.send("héllo")
        ws.send(b"\x00\xff")
        frames = server.peer.frames_until(Opcode.BINARY)
        sent = [(f.opcode, bytes(f.data)) for f in frames]
        assert sent == [(Opcode.TEXT, "héllo".encode()), (Opcode.BINARY, b"\x00\xff")]
        server.peer.send("ünïcode")
        server.peer.send(b"\x80\x81")
        assert ws.recv(5) == "ünïcode"
        assert ws.recv(5) == b"\x80\x81"
    finally:
        shut(server, ws)


def test_no_subprotocol_when_the_server_picks_none(scripted: Any) -> None:
    server = scripted()
    ws = blocking(server, ("corral.v1",))
    assert ws.subprotocol is None
    shut(server, ws)


def test_partial_and_fragmented_frames(scripted: Any) -> None:
    server = scripted()
    ws = blocking(server)
    try:
        peer = server.peer
        data = peer.write(Frame(Opcode.TEXT, b"x" * 1000))
        peer.raw(data[:3])  # not even the whole header
        with pytest.raises(TimeoutError):
            ws.recv(0.05)
        peer.raw(data[3:500])
        with pytest.raises(TimeoutError):
            ws.recv(0)
        peer.raw(data[500:])
        assert ws.recv(5) == "x" * 1000
        first, last = fragments("fragmented ✓", 12)  # cut inside the multi-byte character
        peer.raw(peer.write(first, Frame(Opcode.PING, b"mid"), last))
        assert ws.recv(5) == "fragmented ✓"
        assert [(f.opcode, bytes(f.data)) for f in peer.frames()] == [(Opcode.PONG, b"mid")]
    finally:
        shut(server, ws)


def test_messages_sent_before_a_close_are_read_first(scripted: Any) -> None:
    server = scripted()
    ws = blocking(server)
    server.peer.send("last words")
    server.peer.close(1000)
    with server.answering() as seen:
        assert ws.recv(5) == "last words"
        with pytest.raises(ConnectionClosedOK):
            ws.recv(5)
    with pytest.raises(ConnectionClosedOK):
        ws.send("too late")
    assert [f.opcode for f in seen] == [Opcode.CLOSE]  # the client echoed the close
    ws.close()


@pytest.mark.parametrize("how", ["close 1011", "drop"])
def test_an_abnormal_close_raises_connection_closed_error(scripted: Any, how: str) -> None:
    server = scripted()
    ws = blocking(server)
    with server.answering():
        if how == "drop":
            server.peer.sock.shutdown(socket.SHUT_RDWR)
        else:
            server.peer.close(1011)
        with pytest.raises(ConnectionClosedError):
            ws.recv(5)
    ws.close()
    assert ws.socket.fileno() == -1


def test_close_is_a_clean_handshake_and_leaves_the_watchdog(scripted: Any) -> None:
    server = scripted()
    ws = blocking(server)
    assert _WATCHDOG.watching(ws)
    with server.answering() as seen:
        started = time.monotonic()
        ws.close()
        assert time.monotonic() - started < 1  # the server answered the close; nothing waited for a timeout
    assert [Close.parse(f.data).code for f in seen if f.opcode is Opcode.CLOSE] == [1000]
    assert not _WATCHDOG.watching(ws)
    assert ws.socket.fileno() == -1
    ws.close()
    with pytest.raises(ConnectionClosed):
        ws.send("after close")


def test_pings_are_answered_and_messages_kept_while_the_caller_is_idle(scripted: Any) -> None:
    server = scripted()
    ws = blocking(server)
    try:
        server.peer.send("unasked")
        server.peer.ping(b"are you there")
        frames = server.peer.frames(timeout=5)  # the test calls nothing on ws meanwhile: the watchdog answers
        assert [(f.opcode, bytes(f.data)) for f in frames] == [(Opcode.PONG, b"are you there")]
        assert ws.recv(0) == "unasked"
    finally:
        shut(server, ws)


def test_the_client_pings_a_silent_server_and_drops_it_when_it_stops_answering(scripted: Any) -> None:
    server = scripted()
    ws = blocking(server, ping_interval=0.1)
    try:
        frames = server.peer.frames_until(Opcode.PING)  # idle: the watchdog pings
        assert frames[-1].opcode is Opcode.PING
        # answered: a caller waiting in recv keeps the link up, and pings too
        with server.answering() as seen, pytest.raises(TimeoutError):
            ws.recv(0.5)
        assert any(f.opcode is Opcode.PING for f in seen)
        started = time.monotonic()
        with pytest.raises(ConnectionClosedError):  # no answer any more: the link is declared dead
            ws.recv(5)
        assert time.monotonic() - started < 2
    finally:
        shut(server, ws)


def test_refusals_are_translated(scripted: Any) -> None:
    body = orjson.dumps({"code": "CAPACITY_REACHED", "message": "full", "max_sessions": 1})
    server = scripted(refuse=refusal(503, body, Retry_After="3"))
    with pytest.raises(CapacityReached, match="full") as info:
        socket_connect(server.url, (), {}, 5)
    assert info.value.retry_after == 3.0
    assert info.value.details["max_sessions"] == 1
    server = scripted(refuse=refusal(404, b"no such route"))
    with pytest.raises(TransportError, match="HTTP 404"):
        socket_connect(server.url, (), {}, 5)


def test_a_server_that_never_answers_the_handshake_times_out(scripted: Any) -> None:
    server = scripted(silent=True)
    started = time.monotonic()
    with pytest.raises(TransportError, match="timed out"):
        socket_connect(server.url, (), {}, 0.2)
    assert time.monotonic() - started < 2

def test_an_idle_client_answers_the_servers_pings(start_server: Any) -> None:
    """The server pings every second (lease / 3) and drops a link that does not answer within a second.
    The client sits idle for longer than that, then carries on over the same connection (resume is off)."""
    server = start_server(lease_s=3)
    with EnvClient(server.url, resume=False) as env:
        env.reset()
        link = env._ws
        time.sleep(2.2)
        assert env.step({"message": "still here"}).observation.model_dump()["echoed_message"] == "still here"
        assert env._ws is link


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_large_messages_both_ways(start_server: Any, codec: str) -> None:
    size = 2 << 20
    with EnvClient(start_server(BlobEnv).url, codec=codec, observation_type=BlobObservation) as env:
        env.reset()
        assert env.step({"size": size}).observation.blob == BlobEnv.blob(size)
    with EnvClient(start_server().url, codec=codec) as echo:
        echo.reset()
        assert echo.step({"message": "y" * size}).observation.model_dump()["message_length"] == size


def _keepalive_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "corral-ws-keepalive"]


def test_one_watchdog_thread_keeps_every_idle_client_alive(start_server: Any) -> None:
    """Eight idle blocking clients outlive the server's ping timeout, all looked after by one thread, which
    ends once the last of them closes."""
    server = start_server(lease_s=3)
    envs = [EnvClient(server.url, resume=False) for _ in range(8)]
    try:
        links = []
        for env in envs:
            env.reset()
            links.append(env._ws)
        assert len(_keepalive_threads()) == 1
        time.sleep(2.2)  # the server pings every second and drops a link that has not answered a second later
        for i, env in enumerate(envs):
            assert env.step({"message": f"client {i}"}).observation.model_dump()["echoed_message"] == f"client {i}"
            assert env._ws is links[i]
    finally:
        for env in envs:
            env.close()
    assert not any(_WATCHDOG.watching(link) for link in links)
    if not _WATCHDOG._links:  # no other test left a link open: the thread ends
        deadline = time.monotonic() + 5
        while _keepalive_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _keepalive_threads()
