"""The hot-path WebSocket framing agrees with websockets' own, byte for byte."""

from __future__ import annotations

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from corral.protocol.wsframe import at_frame_boundary, data_frame, header, masked_frame

SIZES = [0, 1, 125, 126, 127, 65_535, 65_536, 200_000]


def open_pair() -> tuple[ClientProtocol, ServerProtocol]:
    client = ClientProtocol(parse_uri("ws://127.0.0.1/ws"), max_size=None)
    client.send_request(client.connect())
    server = ServerProtocol(max_size=None)
    server.receive_data(b"".join(client.data_to_send()))
    server.send_response(server.accept(server.events_received()[0]))  # type: ignore[arg-type]
    client.receive_data(b"".join(server.data_to_send()))
    assert client.events_received()
    return client, server


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("binary", [True, False])
def test_a_servers_frame_reads_the_same_to_websockets(size: int, binary: bool) -> None:
    client, _ = open_pair()
    payload = b"a" * size
    client.receive_data(header(size, binary) + payload)
    [frame] = client.events_received()
    assert isinstance(frame, Frame)
    assert frame.opcode is (Opcode.BINARY if binary else Opcode.TEXT)
    assert frame.fin
    assert frame.data == payload


@pytest.mark.parametrize("size", SIZES)
def test_a_clients_masked_frame_reads_the_same_to_websockets(size: int) -> None:
    _, server = open_pair()
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    server.receive_data(masked_frame(payload, binary=True))
    [frame] = server.events_received()
    assert isinstance(frame, Frame)
    assert frame.opcode is Opcode.BINARY
    assert frame.data == payload


@pytest.mark.parametrize("size", SIZES)
def test_data_frame_finds_what_websockets_wrote(size: int) -> None:
    client, server = open_pair()
    payload = b"x" * size
    server.send_binary(payload)
    client.send_text(payload)
    unmasked = b"".join(server.data_to_send())
    masked = b"".join(client.data_to_send())
    start, end = data_frame(unmasked, 0, False, None) or (0, 0)
    assert unmasked[start:end] == payload
    assert end == len(unmasked)
    start, end = data_frame(b"junk" + masked, 4, True, None) or (0, 0)
    assert end == len(masked) + 4
    assert start == end - size


def test_data_frame_leaves_everything_else_alone() -> None:
    client, server = open_pair()
    server.send_ping(b"p")
    assert data_frame(b"".join(server.data_to_send()), 0, False, None) is None  # control frame
    server.send_binary(b"abc", fin=False)
    assert data_frame(b"".join(server.data_to_send()), 0, False, None) is None  # fragment
    whole = header(300, True) + b"y" * 300
    for cut in (1, 2, 3, 299):
        assert data_frame(whole[:cut], 0, False, None) is None  # not all read yet
    assert data_frame(whole, 0, False, 299) is None  # over the limit
    assert data_frame(whole, 0, True, None) is None  # unmasked where a mask is due
    client.send_binary(b"abc")
    assert data_frame(b"".join(client.data_to_send()), 0, False, None) is None  # masked where none is


def test_at_frame_boundary_follows_websockets_parser() -> None:
    client, _ = open_pair()
    assert at_frame_boundary(client)
    whole = header(10, True) + b"0123456789"
    client.receive_data(whole[:2])  # the header alone: consumed, and the parser waits for the payload
    assert not client.reader.buffer
    assert not at_frame_boundary(client)
    client.receive_data(whole[2:5])
    assert not at_frame_boundary(client)
    client.receive_data(whole[5:])
    assert at_frame_boundary(client)
    [frame] = client.events_received()
    assert isinstance(frame, Frame)
    assert frame.data == b"0123456789"
