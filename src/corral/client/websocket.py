"""The client side of one WebSocket, without I/O: ``websockets``' sans-I/O ``ClientProtocol`` plus what both
lean transports add to it (the handshake request, whole messages out of frames, and ``ConnectionClosed``).

A transport feeds it the bytes it reads (:meth:`ClientWebSocket.receive`, :meth:`~ClientWebSocket.receive_eof`)
and writes what :meth:`~ClientWebSocket.outgoing` returns after every call, which answers the server's pings
and close frame.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

import orjson
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.frames import OK_CLOSE_CODES, CloseCode, Frame, Opcode
from websockets.headers import build_host
from websockets.http11 import USER_AGENT
from websockets.protocol import CLOSED, CONNECTING, OPEN
from websockets.typing import Subprotocol
from websockets.uri import WebSocketURI, parse_uri
from websockets.utils import accept_key

from ..errors import CorralError, TransportError, error_for_code
from ..protocol.wsframe import BINARY, at_frame_boundary, data_frame, masked_frame
from ._base import unix_socket_path

#: The URL a WebSocket handshake names when the link is a Unix socket (the host is not dialled).
UNIX_HANDSHAKE_URL = "ws://localhost/ws"
#: Ping a server that has sent nothing for this long; drop the link after as long again without an answer.
PING_INTERVAL = 20.0
#: How long closing waits for the server to finish the closing handshake.
CLOSE_TIMEOUT = 2.0


class ClientWebSocket:
    """One client WebSocket's protocol state: no size limit, no compression, the handshake request queued.

    ``url`` is ``ws://``, ``wss://`` or ``unix:///socket/path``; :attr:`unix_path` and :attr:`uri` say what
    to dial.
    """

    def __init__(self, url: str, subprotocols: Sequence[str], headers: Mapping[str, str]) -> None:
        self.unix_path = unix_socket_path(url)
        self.uri = _parse_uri(UNIX_HANDSHAKE_URL if self.unix_path is not None else url)
        offered = [Subprotocol(s) for s in subprotocols] or None  # an empty header is a malformed one
        self.protocol = ClientProtocol(self.uri, subprotocols=offered, max_size=None)
        self._heard = False  # bytes arrived since the last keepalive tick
        self._pinged = False
        self._parts: list[bytes | bytearray | memoryview] = []
        self._text = False
        self._out: list[bytes] = []  # frames framed here, not by the protocol
        #: The response head read so far while the handshake is checked here (see _quick_response).
        self._head: bytearray | None = None
        request = _quick_request(self.uri, self.protocol.key, subprotocols, headers)
        if request is not None:
            self._out.append(request)
            self._head = bytearray()
        else:
            websockets_request = self.protocol.connect()
            websockets_request.headers.update(headers)
            websockets_request.headers.setdefault("User-Agent", USER_AGENT)
            self.protocol.send_request(websockets_request)

    @property
    def subprotocol(self) -> str | None:
        return self.protocol.subprotocol

    def accepted(self) -> bool:
        """True once the server accepted the handshake; raises its failure (``InvalidStatus`` for a refusal
        or ``InvalidMessage``) if it failed."""
        if self.protocol.handshake_exc is not None:
            raise self.protocol.handshake_exc
        return self.protocol.state is not CONNECTING

    @property
    def open(self) -> bool:
        return self.protocol.state is OPEN

    @property
    def closed(self) -> bool:
        """True once the link is gone for good: nothing more will arrive."""
        return self.protocol.state is CLOSED

    def receive(self, data: bytes | bytearray | memoryview) -> list[str | bytes]:
        """Feed bytes read from the socket; the whole messages they complete, in order."""
        self._heard = True
        if self._head is not None:
            data = self._quick_response(data)
            if self._head is not None:
                return []  # the response head is not whole yet
        protocol = self.protocol
        messages: list[str | bytes] = []
        if protocol.state is OPEN and not self._parts and at_frame_boundary(protocol):
            # The hot path: whole unfragmented frames, framed here (see corral.protocol.wsframe).
            at = 0
            while (span := data_frame(data, at, False, None)) is not None:
                start, end = span
                if data[at] == BINARY:
                    messages.append(bytes(data[start:end]))
                elif not self._text_message(data[start:end], messages):
                    return messages
                at = end
            if at == len(data):
                return messages
            data = data[at:]
        protocol.receive_data(data)  # type: ignore[arg-type]  # memoryview works: it is appended to a bytearray
        for event in protocol.events_received():
            if not isinstance(event, Frame) or event.opcode > Opcode.BINARY:
                continue  # the handshake response; control frames are answered by the protocol itself
            if event.opcode is not Opcode.CONT:
                self._text = event.opcode is Opcode.TEXT
            if not event.fin:
                self._parts.append(event.data)
                continue
            payload = b"".join((*self._parts, event.data)) if self._parts else event.data
            self._parts = []
            if not self._text:
                messages.append(bytes(payload))
            elif not self._text_message(payload, messages):
                break
        return messages

    def _quick_response(self, data: bytes | bytearray | memoryview) -> bytes:
        """Read the handshake response; once its head is whole, check it and return the bytes after it.

        A plain, valid 101 (RFC 6455, section 4.1) switches to a protocol created open. Anything else, a
        refusal included, is returned whole, for the protocol created at the start (still waiting for a
        response): ``websockets``' parser then reads the rest (a refusal's body) and gives the exact failure.
        """
        head = self._head
        assert head is not None
        head += data
        end = head.find(b"\r\n\r\n")
        if end < 0 and len(head) <= _MAX_QUICK_HEAD:
            return b""
        self._head = None
        subprotocol = _switched(head[:end], self.protocol.key, self.protocol.available_subprotocols or ()) \
            if end >= 0 else None
        if subprotocol is None:
            return bytes(head)  # all of it, for the protocol, which is still waiting for a response
        self.protocol = ClientProtocol(self.uri, state=OPEN, max_size=None)
        self.protocol.subprotocol = Subprotocol(subprotocol) if subprotocol else None
        return bytes(head[end + 4:])

    def _text_message(self, payload: bytes | bytearray | memoryview, messages: list[str | bytes]) -> bool:
        """Append a text message; False (and the link failed with 1007) if it is not UTF-8."""
        try:
            messages.append(str(payload, "utf-8"))
        except UnicodeDecodeError as exc:
            self.protocol.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
            return False
        return True

    def receive_eof(self) -> None:
        """The socket reached its end (or failed): the link is closed."""
        self.protocol.receive_eof()

    def send(self, message: str | bytes) -> None:
        """Queue one message: text for ``str``, binary for ``bytes``. Raises ``ConnectionClosed`` once closing."""
        protocol = self.protocol
        if protocol.state is not OPEN:
            raise self.close_error()
        queued = protocol.data_to_send()  # a pong the protocol wrote goes out first
        if queued:
            self._out.extend(queued)
        if isinstance(message, str):
            self._out.append(masked_frame(message.encode(), binary=False))
        else:
            self._out.append(masked_frame(message, binary=True))

    def keepalive(self) -> bool:
        """Call every :data:`PING_INTERVAL`: queues a ping when the server has sent nothing since the last
        call; False when it has not answered the ping queued then either (the link is dead: drop it)."""
        if self._heard or self.protocol.state is not OPEN:
            self._heard = self._pinged = False
            return True
        if self._pinged:
            return False
        self.protocol.send_ping(b"")
        self._pinged = True
        return True

    def close(self) -> None:
        """Start the closing handshake (code 1000) if the link is open; the server then closes the socket."""
        if self.protocol.state is OPEN:
            self.protocol.send_close(CloseCode.NORMAL_CLOSURE)

    def outgoing(self) -> bytes:
        """What to write to the socket now (the end-of-stream marker is left out: the transport closes the
        socket once :attr:`closed`)."""
        writes = self.protocol.data_to_send()
        if self._out:
            writes, self._out = self._out + writes, []
        return writes[0] if len(writes) == 1 else b"".join(writes)

    def close_error(self) -> ConnectionClosed:
        """The ``ConnectionClosed`` to raise on a link that is closing or closed: ``ConnectionClosedOK`` after a
        normal close (1000 or 1001) both ways."""
        p = self.protocol
        ok = (p.close_rcvd is not None and p.close_sent is not None
              and p.close_rcvd.code in OK_CLOSE_CODES and p.close_sent.code in OK_CLOSE_CODES)
        exc = (ConnectionClosedOK if ok else ConnectionClosedError)(p.close_rcvd, p.close_sent, p.close_rcvd_then_sent)
        exc.__cause__ = p.parser_exc
        return exc


#: A response head longer than this is left to ``websockets``' parser.
_MAX_QUICK_HEAD = 8192
#: Request headers the handshake writes itself: a caller's header of one of these names (any case) leaves
#: the request to ``websockets``.
_HANDSHAKE_HEADERS = frozenset({"host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
                                "sec-websocket-protocol", "sec-websocket-extensions"})


@functools.lru_cache(maxsize=256)
def _parse_uri(url: str) -> WebSocketURI:
    return parse_uri(url)  # nothing changes a parsed URI: one per URL is shared


@functools.lru_cache(maxsize=256)
def _host_header(host: str, port: int, secure: bool) -> str:
    return build_host(host, port, secure)


def _quick_request(uri: WebSocketURI, key: str, subprotocols: Sequence[str],
                   headers: Mapping[str, str]) -> bytes | None:
    """The opening handshake request, written directly; None when ``websockets`` should write it (user info
    in the URL, or a header the handshake writes itself). Raises ``ValueError`` for a header that cannot go
    into an HTTP request."""
    if uri.user_info is not None:
        return None
    lines = [f"GET {uri.resource_name} HTTP/1.1", f"Host: {_host_header(uri.host, uri.port, uri.secure)}",
             "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if subprotocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
    agent = True
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise ValueError(f"header {name!r}: {value!r:.100} cannot be sent in an HTTP request; header names "
                             "are letters, digits and -!#$%&'*+.^_`|~, values printable ASCII on one line")
        lowered = name.lower()
        if lowered in _HANDSHAKE_HEADERS:
            return None
        agent = agent and lowered != "user-agent"
        lines.append(f"{name}: {value}")
    if agent:
        lines.append(f"User-Agent: {USER_AGENT}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("ascii")  # the URI's host and resource are ASCII (IDNA, percent-encoded)


_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(r"[\x20-\x7e\t]*")


def _switched(head: bytes | bytearray, key: str, offered: Sequence[str]) -> str | None:
    """The subprotocol a plain, valid 101 response head selects (``""`` for none); None for any other head."""
    lines = bytes(head).split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 101 "):
        return None
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        lowered = name.decode("latin-1").lower()
        if not colon or lowered in fields:
            return None  # not a header line, or a repeated header: websockets says what is wrong
        fields[lowered] = value.strip(b" \t").decode("latin-1")
    if (fields.get("upgrade", "").lower() != "websocket"
            or "upgrade" not in (t.strip().lower() for t in fields.get("connection", "").split(","))
            or fields.get("sec-websocket-accept") != accept_key(key)
            or "sec-websocket-extensions" in fields):
        return None
    subprotocol = fields.get("sec-websocket-protocol", "")
    if subprotocol and subprotocol not in offered:
        return None
    return subprotocol


def handshake_error(url: str, exc: BaseException) -> CorralError:
    """Translate a failed WebSocket open into a Corral error that says what to do."""
    if isinstance(exc, InvalidStatus):
        response = exc.response
        try:
            body = orjson.loads(response.body or b"{}")
        except Exception:
            body = {}
        if not isinstance(body, dict):
            body = {}
        code = str(body.get("code") or {401: "UNAUTHORIZED", 503: "CAPACITY_REACHED"}.get(response.status_code, ""))
        message = str(body.get("message") or f"server refused the connection with HTTP {response.status_code}")
        if code:
            details = {k: v for k, v in body.items() if k not in ("code", "message")}
            retry_after = response.headers.get("Retry-After")
            if retry_after is not None:
                details["retry_after"] = retry_after
            return error_for_code(code, message, details)
        return TransportError(f"{url}: {message}")
    if isinstance(exc, (OSError, TimeoutError)):
        return TransportError(f"cannot connect to {url}: {exc}; is the server running?")
    return TransportError(f"cannot connect to {url}: {type(exc).__name__}: {exc}")
