"""The client's opening handshake, without I/O: the request it writes and the responses it accepts or refuses.

:class:`~corral.client.websocket.ClientWebSocket` writes the request and checks a plain 101 itself; anything
else goes to ``websockets``' parser. Both must agree with ``websockets``' own server side.
"""

from __future__ import annotations

from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedOK, InvalidHandshake, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from corral.client.websocket import ClientWebSocket

OFFERED = ["corral.v1+msgpack", "corral.v1"]


def handshake(url: str = "ws://127.0.0.1:8000/ws", subprotocols: list[str] = OFFERED,
              headers: dict[str, str] | None = None, server_subprotocols: list[str] = OFFERED
              ) -> tuple[ClientWebSocket, ServerProtocol, Request, bytes]:
    """The client's request, read by websockets' server; the server's 101 to it, as bytes."""
    client = ClientWebSocket(url, subprotocols, headers or {})
    server = ServerProtocol(subprotocols=[Subprotocol(s) for s in server_subprotocols], max_size=None)
    server.receive_data(client.outgoing())
    [request] = server.events_received()
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    return client, server, request, b"".join(server.data_to_send())


def test_the_request_is_one_websockets_accepts() -> None:
    _, server, request, _ = handshake(headers={"Authorization": "Bearer t0k", "X-Corral-Open": "0"})
    assert server.handshake_exc is None
    assert request.path == "/ws"
    assert request.headers["Host"] == "127.0.0.1:8000"
    assert request.headers["Authorization"] == "Bearer t0k"
    assert request.headers["X-Corral-Open"] == "0"
    assert request.headers["Sec-WebSocket-Protocol"] == "corral.v1+msgpack, corral.v1"
    assert request.headers["User-Agent"].startswith("Python/")
    assert "Sec-WebSocket-Extensions" not in request.headers  # no compression


def test_a_callers_user_agent_replaces_the_default() -> None:
    _, _, request, _ = handshake(headers={"User-Agent": "trainer/2"})
    assert request.headers.get_all("User-Agent") == ["trainer/2"]


@pytest.mark.parametrize("cut", [1, 7, 40, None], ids=["byte-by-byte", "7-bytes", "40-bytes", "one-read"])
def test_a_101_in_pieces_with_frames_behind_it(cut: int | None) -> None:
    client, server, _, response = handshake()
    server.send_text(b'{"type":"hello"}')
    server.send_binary(b"\x81\xa1")
    data = response + b"".join(server.data_to_send())
    pieces = [data] if cut is None else [data[i:i + cut] for i in range(0, len(data), cut)]
    messages: list[Any] = []
    for piece in pieces:
        messages += client.receive(piece)
    assert client.accepted()
    assert client.open
    assert client.subprotocol == "corral.v1+msgpack"
    assert messages == ['{"type":"hello"}', b"\x81\xa1"]


def test_no_subprotocol_when_the_server_picks_none() -> None:
    client, _, _, response = handshake(server_subprotocols=[])
    client.receive(response)
    assert client.accepted()
    assert client.subprotocol is None


def test_after_a_quick_handshake_control_frames_and_close_still_work() -> None:
    client, server, _, response = handshake()
    client.receive(response)
    server.send_ping(b"?")
    client.receive(b"".join(server.data_to_send()))
    server.receive_data(client.outgoing())
    [pong] = server.events_received()
    assert isinstance(pong, Frame)
    assert (pong.opcode, pong.data) == (Opcode.PONG, b"?")
    client.close()
    server.receive_data(client.outgoing())
    client.receive(b"".join(server.data_to_send()))  # the server's echo of the close
    client.receive_eof()  # and the server closes the socket
    assert client.closed
    assert isinstance(client.close_error(), ConnectionClosedOK)


def _broken(response: bytes, old: bytes, new: bytes) -> bytes:
    assert old in response
    return response.replace(old, new)


@pytest.mark.parametrize("change", [
    pytest.param(lambda r: _broken(r, b"Sec-WebSocket-Accept: ", b"Sec-WebSocket-Accept: x"), id="wrong-accept"),
    pytest.param(lambda r: _broken(r, b"Protocol: corral.v1+msgpack", b"Protocol: other.v9"),
                 id="unoffered-subprotocol"),
    pytest.param(lambda r: _broken(r, b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
                 id="extension-not-offered"),
    pytest.param(lambda r: _broken(r, b"Upgrade: websocket", b"Upgrade: h2c"), id="wrong-upgrade"),
    pytest.param(lambda r: _broken(r, b"Connection: Upgrade", b"Connection: close"), id="no-connection-upgrade"),
])
def test_a_101_that_breaks_the_rfc_fails_the_handshake(change: Any) -> None:
    client, _, _, response = handshake()
    client.receive(change(response))
    with pytest.raises(InvalidHandshake):
        client.accepted()
    assert not client.open


def test_a_refusal_is_read_whole_by_websockets() -> None:
    client = ClientWebSocket("ws://127.0.0.1:8000/ws", OFFERED, {})
    client.outgoing()
    body = b'{"code":"CAPACITY_REACHED","message":"full"}'
    refusal = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\nRetry-After: 3\r\n\r\n" % len(body)) + body
    for i in range(0, len(refusal), 16):
        client.receive(refusal[i:i + 16])
    with pytest.raises(InvalidStatus) as info:
        client.accepted()
    assert info.value.response.status_code == 503
    assert info.value.response.body == body


def test_user_info_in_the_url_is_basic_auth() -> None:
    client, _, request, response = handshake(url="ws://ann:secret@127.0.0.1:8000/ws")
    assert request.headers["Authorization"].startswith("Basic ")
    client.receive(response)
    assert client.accepted()


@pytest.mark.parametrize("headers", [{"X-Bad": "one\r\nInjected: yes"}, {"X Bad": "1"}, {"X-Bad": "naïve"}])
def test_a_header_that_cannot_be_sent_is_refused_before_anything_is_sent(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="cannot be sent in an HTTP request"):
        ClientWebSocket("ws://127.0.0.1:8000/ws", OFFERED, headers)
