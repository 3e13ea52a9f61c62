"""Corral's own uvicorn WebSocket protocol, over real sockets: the handshake and its refusals, frames, keepalive
pings that find half-open links, large messages and back-pressure, shutdown, and the fallback for other apps."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgpack
import orjson
import pytest
import uvicorn
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.sync.client import connect
from websockets.uri import parse_uri
from websockets.utils import accept_key

from corral import ServerConfig
from corral.envs.echo import EchoEnvironment
from corral.protocol import HEADER_WAIT, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK
from corral.protocol.wsframe import masked_frame
from corral.server import create_app, uvicorn_config
from corral.server.wsprotocol import CorralWebSocketProtocol

from ..support import CountingEnv, RunningServer, ask, recv, wait_until


class RawClient:
    """A WebSocket client on a plain socket, driven by websockets' sans-I/O ``ClientProtocol``. It reads only
    when asked to, so it can play a peer that stops reading, or stops answering pings."""

    def __init__(self, port: int, path: str = "/ws", subprotocols: list[str] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}{path}"),
                                       subprotocols=subprotocols, max_size=None)  # type: ignore[arg-type]
        self.protocol.send_request(self.protocol.connect())
        self.flush()
        self._events: list[Any] = []
        response = self._next()
        assert isinstance(response, Response)
        self.response = response

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def _next(self) -> Any:
        while not self._events:
            data = self.sock.recv(1 << 16)
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            self._events.extend(self.protocol.events_received())
            if not data and not self._events:
                raise EOFError("the server closed the connection")
        return self._events.pop(0)

    def frame(self) -> Frame:
        """The next data or close frame (pings are answered, pongs skipped)."""
        while True:
            event = self._next()
            self.flush()
            if isinstance(event, Frame) and event.opcode not in (Opcode.PING, Opcode.PONG):
                return event

    def send(self, frame: dict[str, Any]) -> None:
        self.protocol.send_text(orjson.dumps(frame))
        self.flush()

    def recv(self) -> dict[str, Any]:
        frame = self.frame()
        assert frame.opcode is Opcode.TEXT, frame
        reply = orjson.loads(frame.data)
        assert isinstance(reply, dict)
        return reply

    def ask(self, frame: dict[str, Any]) -> dict[str, Any]:
        self.send(frame)
        return self.recv()

    def close_code(self) -> int | None:
        """Read until the server's close frame; its code."""
        frame = self.frame()
        assert frame.opcode is Opcode.CLOSE, frame
        return self.protocol.close_rcvd.code if self.protocol.close_rcvd else None

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    CountingEnv.reset_counters()


@pytest.fixture
def raw() -> Iterator[Any]:
    clients: list[RawClient] = []

    def open_client(server: RunningServer, **kwargs: Any) -> RawClient:
        client = RawClient(server.port, **kwargs)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()


def refused(url: str, **kwargs: Any) -> Response:
    with pytest.raises(InvalidStatus) as info:
        connect(url, open_timeout=5, **kwargs)
    return info.value.response


# -- the handshake -----------------------------------------------------------------------------------


def test_serve_gives_corral_apps_their_own_protocol() -> None:
    assert uvicorn_config(create_app(EchoEnvironment)).ws is CorralWebSocketProtocol

    async def other_app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never called")

    assert uvicorn_config(other_app).ws == "websockets-sansio"


def test_other_paths_are_refused(echo_server: RunningServer) -> None:
    response = refused(f"ws://127.0.0.1:{echo_server.port}/elsewhere")
    assert response.status_code == 404
    assert orjson.loads(response.body)["code"] == "NOT_FOUND"
    assert response.headers["Content-Type"] == "application/json"


def test_a_request_that_is_no_websocket_handshake_gets_400(echo_server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=5) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"Sec-WebSocket-Key" in reply


def test_the_handshake_request_is_not_kept(start_server: Any, raw: Any) -> None:
    server = start_server(EchoEnvironment)
    client = raw(server, subprotocols=[SUBPROTOCOL_JSON])
    assert client.recv()["type"] == "hello"
    [protocol] = server.server.server_state.connections
    assert isinstance(protocol, CorralWebSocketProtocol)
    wait_until(lambda: protocol._busy is None)  # the handshake task is over, and with it the request
    assert not hasattr(protocol, "__dict__")


_KEY = base64.b64encode(b"0123456789abcdef").decode()
_UPGRADE = ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {_KEY}", "Sec-WebSocket-Version: 13"]


def _response_head(port: int, lines: list[str]) -> bytes:
    """Send an upgrade request made of ``lines``; the status line and headers of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{line}\r\n" for line in lines)
                      + "\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head and (chunk := sock.recv(4096)):
            head += chunk
    return head.partition(b"\r\n\r\n")[0]


@pytest.mark.parametrize(("lines", "status", "expected"), [
    (_UPGRADE, 101, [f"Sec-WebSocket-Accept: {accept_key(_KEY)}"]),
    ([*_UPGRADE, "Sec-WebSocket-Protocol: corral.v1+msgpack, corral.v1"], 101,
     ["Sec-WebSocket-Protocol: corral.v1+msgpack"]),
    (["Upgrade: WebSocket", "Connection: keep-alive, Upgrade", *_UPGRADE[2:]], 101, ["Connection: Upgrade"]),
    # compression is declined by leaving the extension out of the answer
    ([*_UPGRADE, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"], 101, []),
    # not for the quick handshake: websockets' parser gives its own answer
    ([*_UPGRADE[:3], "Sec-WebSocket-Version: 8"], 400, ["Connection: close"]),
    ([*_UPGRADE[:2], "Sec-WebSocket-Key: " + base64.b64encode(b"x" * 15).decode(), _UPGRADE[3]], 400, []),
    ([*_UPGRADE, f"Sec-WebSocket-Key: {_KEY}"], 400, []),
], ids=["plain", "subprotocol", "tokens", "deflate-offered", "version-8", "short-key", "two-keys"])
def test_upgrade_requests_get_the_rfc_answer(echo_server: RunningServer, lines: list[str], status: int,
                                              expected: list[str]) -> None:
    head = _response_head(echo_server.port, lines).decode()
    status_line, *fields = head.split("\r\n")
    assert status_line.startswith(f"HTTP/1.1 {status} "), head
    for field in expected:
        assert field in fields, head
    assert not any(field.lower().startswith("sec-websocket-extensions") for field in fields)


@pytest.mark.parametrize(("capacity", "same_write"), [(1, False), (1, True), (4, True)],
                         ids=["while-waiting-for-a-slot", "with-the-request-waiting", "with-the-request-at-once"])
def test_frames_sent_before_the_101_are_answered_after_it(start_server: Any, capacity: int, same_write: bool) -> None:
    # A client should wait for the 101; one that does not loses nothing: neither a frame sent while it waits
    # for a slot, nor one in the same write as the upgrade request (which uvicorn alone drops).
    server = start_server(CountingEnv, capacity=capacity)
    holder = server.ws()
    ask(holder, {"type": "reset"})
    client = ClientProtocol(parse_uri(server.ws_url), subprotocols=[SUBPROTOCOL_JSON], max_size=None)  # type: ignore[list-item]
    request = client.connect()
    request.headers[HEADER_WAIT] = "10"
    client.send_request(request)
    early = masked_frame(orjson.dumps({"type": "reset", "id": "early", "data": {"seed": 3}}), binary=False)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"".join(client.data_to_send()) + (early if same_write else b""))
        if capacity == 1:
            wait_until(lambda: len(server.server.server_state.tasks) == 1)  # waiting for the slot
        if not same_write:
            sock.sendall(early)
        holder.close()
        events: list[Any] = []
        while len(events) < 3:  # the 101, hello, the early reset's reply
            client.receive_data(sock.recv(1 << 16))
            events += client.events_received()
    response, greeting, reply = events
    assert response.status_code == 101
    assert orjson.loads(greeting.data)["type"] == "hello"
    assert orjson.loads(reply.data)["id"] == "early"
    assert orjson.loads(reply.data)["type"] == "observation"


@contextlib.contextmanager
def serving(config: uvicorn.Config) -> Iterator[int]:
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        assert time.monotonic() < deadline, "the server did not start in time"
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(15)


def test_the_protocol_refuses_apps_it_cannot_serve(capfd: pytest.CaptureFixture[str]) -> None:
    async def other_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})

    config = uvicorn.Config(other_app, port=0, ws=CorralWebSocketProtocol, log_level="warning")
    with serving(config) as port:
        response = refused(f"ws://127.0.0.1:{port}/ws")
    assert response.status_code == 500
    assert "give uvicorn ws='websockets-sansio'" in capfd.readouterr().err


# -- frames ----------------------------------------------------------------------------------------


def test_fragmented_messages_are_put_together(echo_server: RunningServer) -> None:
    with echo_server.ws() as ws:
        ask(ws, {"type": "reset"})
        ws.send(iter(['{"type": "step", ', '"data": {"message": ', '"in three parts"}}']))
        assert recv(ws)["data"]["observation"]["echoed_message"] == "in three parts"


def test_client_pings_are_answered(echo_server: RunningServer) -> None:
    with echo_server.ws() as ws:
        assert ws.ping(b"are you there").wait(5)
        assert ask(ws, {"type": "reset"})["type"] == "observation"


def test_text_that_is_not_utf8_is_an_error_frame(echo_server: RunningServer, raw: Any) -> None:
    client = raw(echo_server)
    client.protocol.send_text(b'{"type": "reset", "x": "\xff"}')
    client.flush()
    reply = client.recv()
    assert reply["type"] == "error"
    assert reply["data"]["code"] == "INVALID_JSON"
    assert client.ask({"type": "reset"})["type"] == "observation"


def step_frame(client: RawClient, message: str) -> bytes:
    """A masked text frame asking to step with ``message``, as bytes for the socket."""
    client.protocol.send_text(orjson.dumps({"type": "step", "data": {"message": message}}))
    return b"".join(client.protocol.data_to_send())


@pytest.mark.parametrize("size", [0, 100, 126, 65_535, 65_536, 300_000])
def test_every_length_encoding_in_one_read(echo_server: RunningServer, raw: Any, size: int) -> None:
    client = raw(echo_server)
    assert client.ask({"type": "reset"})["type"] == "observation"
    messages = [chr(97 + i) * max(size - 40, 0) for i in range(3)]  # frames of about ``size`` bytes
    client.sock.sendall(b"".join(step_frame(client, m) for m in messages))
    for message in messages:
        assert client.recv()["data"]["observation"]["echoed_message"] == message


def test_frames_split_and_mixed_with_pings_keep_their_order(echo_server: RunningServer, raw: Any) -> None:
    client = raw(echo_server)
    assert client.ask({"type": "reset"})["type"] == "observation"
    first, second, third = (step_frame(client, str(i) * 500) for i in range(3))
    client.protocol.send_ping(b"between")
    ping = b"".join(client.protocol.data_to_send())
    stream = first + ping + second + third
    for cut in (3, len(first) + 1, len(first) + len(ping) + 200):  # a header, a ping and a payload cut in two
        client.sock.sendall(stream[:cut])
        time.sleep(0.05)
        stream = stream[cut:]
    client.sock.sendall(stream)
    replies = [client._next() for _ in range(4)]
    assert [frame.opcode for frame in replies] == [Opcode.TEXT, Opcode.PONG, Opcode.TEXT, Opcode.TEXT]
    assert replies[1].data == b"between"
    for i, frame in enumerate(replies[:1] + replies[2:]):
        assert orjson.loads(frame.data)["data"]["observation"]["echoed_message"] == str(i) * 500


def test_a_header_read_alone_is_followed_by_its_payload(echo_server: RunningServer, raw: Any) -> None:
    # websockets' parser consumes a header that arrives alone and waits for the payload, with nothing held in its
    # buffer; the payload that follows must not be taken for a new frame, even when it looks like one (msgpack's
    # two-key map starts 0x82 0xa4: a masked binary frame header).
    client = raw(echo_server, subprotocols=[SUBPROTOCOL_MSGPACK])
    assert client.frame().opcode is Opcode.BINARY  # hello
    client.protocol.send_binary(msgpack.packb({"type": "reset", "id": 1}))
    client.flush()
    assert msgpack.unpackb(client.frame().data)["type"] == "observation"
    payload = msgpack.packb({"type": "step", "data": {"message": "x" * 60}})
    assert payload[:2] == b"\x82\xa4"
    # the all-zero mask key is as valid as any, and leaves the payload on the wire as it is
    header = bytes((0x82, 0x80 | len(payload))) + bytes(4)
    client.sock.sendall(header)
    time.sleep(0.05)
    client.sock.sendall(payload)
    reply = msgpack.unpackb(client.frame().data)
    assert reply["data"]["observation"]["echoed_message"] == "x" * 60


def test_a_compressed_frame_that_was_not_negotiated_is_a_protocol_error(echo_server: RunningServer,
                                                                        raw: Any) -> None:
    client = raw(echo_server)
    frame = bytearray(step_frame(client, "x"))
    frame[0] |= 0x40  # RSV1: permessage-deflate, never negotiated
    client.sock.sendall(bytes(frame))
    assert client.close_code() == 1002


def test_data_after_a_close_frame_is_not_answered(start_server: Any, raw: Any) -> None:
    server = start_server(CountingEnv)
    client = raw(server)
    assert client.ask({"type": "reset"})["type"] == "observation"
    client.protocol.send_close(1000)
    close = b"".join(client.protocol.data_to_send())
    client.sock.sendall(close + b"\x81\x80abcd")  # an empty text frame after the close
    assert client.close_code() == 1000
    wait_until(lambda: CountingEnv.closed == 1)


def test_a_protocol_error_closes_with_1002_and_closes_the_session(start_server: Any, raw: Any) -> None:
    server = start_server(CountingEnv)
    client = raw(server)
    assert client.ask({"type": "reset"})["type"] == "observation"
    client.sock.sendall(b"\x81\x02hi")  # a client frame must be masked
    assert client.close_code() == 1002
    wait_until(lambda: server.manager.active == 0)
    wait_until(lambda: CountingEnv.closed == 1)


def test_a_close_frame_is_echoed_and_detaches_corral_sessions(start_server: Any) -> None:
    server = start_server(CountingEnv)
    ws = server.ws([SUBPROTOCOL_JSON])
    session = recv(ws)["data"]["session"]
    ws.close(4000, "done for now")
    wait_until(lambda: server.manager.sessions[session].connection is None)
    assert server.manager.active == 1  # kept for a resume within the lease


# -- large messages and back-pressure -------------------------------------------------------------


def test_large_messages_both_ways(echo_server: RunningServer) -> None:
    big = "x" * (6 << 20)
    with echo_server.ws() as ws:
        ask(ws, {"type": "reset"})
        reply = ask(ws, {"type": "step", "data": {"message": big}}, timeout=30)
        assert reply["data"]["observation"]["echoed_message"] == big


def test_a_client_that_does_not_read_is_not_read_from(start_server: Any, raw: Any) -> None:
    server = start_server(EchoEnvironment)
    client = raw(server)
    assert client.ask({"type": "reset"})["type"] == "observation"
    count, size = 24, 1 << 20
    for i in range(count):
        client.protocol.send_text(orjson.dumps({"type": "step", "data": {"message": chr(97 + i) * size}}))
    frames = client.protocol.data_to_send()
    sender = threading.Thread(target=lambda: [client.sock.sendall(frame) for frame in frames], daemon=True)
    sender.start()
    time.sleep(0.5)  # replies pile up: the server stops reading until they drain
    for i in range(count):
        observation = client.recv()["data"]["observation"]
        assert observation["echoed_message"][:3] == chr(97 + i) * 3
        assert observation["message_length"] == size
    sender.join(10)
    assert client.ask({"type": "state"})["data"]["step_count"] == count


# -- keepalive -------------------------------------------------------------------------------------


def test_pings_find_half_open_links(start_server: Any, raw: Any) -> None:
    server = start_server(CountingEnv, lease_s=60)
    server.server.config.ws_ping_interval = 0.1
    live = server.ws([SUBPROTOCOL_JSON])  # answers pings from its own thread
    recv(live)
    compat = raw(server)
    assert compat.ask({"type": "reset"})["type"] == "observation"
    silent = raw(server, subprotocols=[SUBPROTOCOL_JSON])
    session = silent.recv()["data"]["session"]
    # From here on, neither raw client reads: the server's pings go unanswered.
    wait_until(lambda: CountingEnv.closed == 1)  # the compat session closes with its link
    wait_until(lambda: server.manager.sessions[session].connection is None)  # the corral/1 one detaches
    assert server.manager.active == 2  # the silent corral/1 session, kept for a resume, and the live one
    time.sleep(0.3)
    assert ask(live, {"type": "ping", "id": 1}) == {"type": "pong", "id": 1}
    with contextlib.suppress(ConnectionError, EOFError):  # the server cut the link: these reads end
        while True:
            compat.frame()
    live.close()


# -- shutdown --------------------------------------------------------------------------------------


def test_shutdown_closes_every_connection_with_1012(start_server: Any) -> None:
    server = start_server(CountingEnv)
    compat = server.ws()
    ask(compat, {"type": "reset"})
    corral = server.ws([SUBPROTOCOL_JSON])
    recv(corral)
    server.stop()
    for ws in (compat, corral):
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1012
    assert CountingEnv.closed == CountingEnv.created == 2


def test_shutdown_refuses_an_upgrade_still_waiting_for_a_slot(start_server: Any) -> None:
    server = start_server(CountingEnv, capacity=1)
    holder = server.ws()
    ask(holder, {"type": "reset"})
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(server.ws, None, {HEADER_WAIT: "20"})
        wait_until(lambda: len(server.server.server_state.tasks) == 1)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 4
        with pytest.raises(InvalidStatus) as info:
            waiting.result(5)
    assert info.value.response.status_code == 503
    assert orjson.loads(info.value.response.body)["code"] == "SHUTTING_DOWN"
    holder.close()
    assert CountingEnv.closed == CountingEnv.created == 1


def test_pings_follow_the_apps_lease() -> None:
    config = uvicorn_config(create_app(EchoEnvironment, ServerConfig(lease_s=30)))
    assert config.ws_ping_interval == 10
