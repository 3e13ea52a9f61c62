"""``ClientWebSocket`` frames whole messages itself and leaves the rest to ``websockets``: both agree, always."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from corral.client.websocket import ClientWebSocket
from corral.protocol.wsframe import header


def open_link() -> tuple[ClientWebSocket, ServerProtocol]:
    ws = ClientWebSocket("ws://127.0.0.1:1/ws", ["corral.v1+msgpack"], {})
    server = ServerProtocol(subprotocols=["corral.v1+msgpack"], max_size=None)  # type: ignore[list-item]
    server.receive_data(ws.outgoing())
    server.send_response(server.accept(server.events_received()[0]))  # type: ignore[arg-type]
    assert ws.receive(b"".join(server.data_to_send())) == []
    assert ws.accepted()
    return ws, server


def frames(server: ServerProtocol) -> bytes:
    return b"".join(server.data_to_send())


def test_a_header_read_alone_is_followed_by_its_payload() -> None:
    ws, _ = open_link()
    payload = header(5, True) + b"hello"  # a binary message that looks like a whole frame itself
    wire = header(len(payload), True) + payload
    assert ws.receive(wire[:2]) == []
    assert ws.receive(wire[2:]) == [payload]
    assert ws.receive(header(2, False) + b"ok") == ["ok"]


def test_messages_pings_and_split_frames_keep_their_order() -> None:
    ws, server = open_link()
    server.send_text(b"one")
    server.send_ping(b"are you there")
    server.send_binary(b"two" * 100)
    server.send_text("thr\u00e9e".encode())
    server.send_binary(b"fo", fin=False)
    server.send_continuation(b"ur", fin=True)
    wire = frames(server)
    received: list[str | bytes] = []
    for at in range(0, len(wire), 7):  # cut everywhere, headers included
        received += ws.receive(wire[at : at + 7])
    assert received == ["one", b"two" * 100, "thr\u00e9e", b"four"]
    server.receive_data(ws.outgoing())
    [pong] = server.events_received()
    assert isinstance(pong, Frame)
    assert pong.opcode is Opcode.PONG
    assert pong.data == b"are you there"


def test_many_messages_in_one_read() -> None:
    ws, server = open_link()
    for i in range(50):
        server.send_binary(bytes([i]) * i)
    assert ws.receive(frames(server)) == [bytes([i]) * i for i in range(50)]


def test_text_that_is_not_utf8_fails_the_link_with_1007() -> None:
    ws, _ = open_link()
    assert ws.receive(header(2, False) + b"\xff\xfe" + header(1, False) + b"x") == []
    assert not ws.open
    with pytest.raises(ConnectionClosedError) as info:
        ws.send("after")
    assert info.value.sent is not None
    assert info.value.sent.code == 1007


def test_sent_frames_are_masked_and_read_back_by_the_server() -> None:
    ws, server = open_link()
    ws.send("text")
    ws.send(b"\x00binary")
    server.receive_data(ws.outgoing())
    received = server.events_received()
    assert [(f.opcode, f.data) for f in received if isinstance(f, Frame)] == [
        (Opcode.TEXT, b"text"), (Opcode.BINARY, b"\x00binary")
    ]


def test_a_pong_queued_by_the_protocol_leaves_before_a_later_message() -> None:
    ws, server = open_link()
    server.send_ping(b"p")
    assert ws.receive(frames(server)) == []
    ws.send("after the pong")
    server.receive_data(ws.outgoing())
    kinds = [f.opcode for f in server.events_received() if isinstance(f, Frame)]
    assert kinds == [Opcode.PONG, Opcode.TEXT]
