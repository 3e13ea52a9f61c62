"""A WebSocket server the test drives by hand, for the transports' tests: websockets' ``ServerProtocol`` on a
blocking socket, one connection, every frame sent and read by the test (partial frames, pings, closes)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol


class Peer:
    """The server side of the one connection."""

    def __init__(self, sock: socket.socket, subprotocols: list[str]) -> None:
        self.sock = sock
        self.protocol = ServerProtocol(subprotocols=[Subprotocol(s) for s in subprotocols] or None, max_size=None)

    def handshake(self, refuse: Response | None) -> None:
        events: list[object] = []
        while not events:
            self.protocol.receive_data(self.sock.recv(65536))
            events = self._events()
        request = events[0]
        assert isinstance(request, Request)
        self.protocol.send_response(refuse or self.protocol.accept(request))
        self.flush()

    def _events(self) -> list[object]:
        return list(self.protocol.events_received())

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)
            else:
                self.sock.shutdown(socket.SHUT_WR)

    def send(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.protocol.send_text(message.encode())
        else:
            self.protocol.send_binary(message)
        self.flush()

    def write(self, *frames: Frame) -> bytes:
        """Serialize ``frames`` as a server would; the bytes, to write with :meth:`raw` (in pieces, say)."""
        return b"".join(frame.serialize(mask=False) for frame in frames)

    def raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def ping(self, payload: bytes = b"") -> None:
        self.protocol.send_ping(payload)
        self.flush()

    def close(self, code: int = 1000) -> None:
        self.protocol.send_close(code)
        self.flush()

    def frames(self, timeout: float = 5.0) -> list[Frame]:
        """The next frames from the client (control frames too; pings are answered). [] once it has gone."""
        self.sock.settimeout(timeout)
        while True:
            frames = [e for e in self._events() if isinstance(e, Frame)]
            if frames:
                return frames
            data = self.sock.recv(65536)
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            self.flush()
            if not data:
                return [e for e in self._events() if isinstance(e, Frame)]

    def frames_until(self, opcode: Opcode, timeout: float = 5.0) -> list[Frame]:
        """Read frames until one with ``opcode`` arrives; all of them."""
        seen: list[Frame] = []
        while not any(f.opcode is opcode for f in seen):
            more = self.frames(timeout)
            if not more:
                raise AssertionError(f"the client left before sending {opcode.name}; it sent {seen}")
            seen += more
        return seen


class ScriptedServer:
    """Listens on 127.0.0.1; a thread accepts one connection and answers its handshake (``refuse`` sends that
    response instead; ``silent`` answers nothing). :attr:`peer` is the server side once it is open."""

    def __init__(self, subprotocols: list[str] | None = None, refuse: Response | None = None,
                 silent: bool = False) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.url = f"ws://127.0.0.1:{self.listener.getsockname()[1]}/ws"
        self._subprotocols = subprotocols or []
        self._refuse = refuse
        self._silent = silent
        self._peer: Peer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._accept, name="scripted-ws", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
            peer = Peer(sock, self._subprotocols)
            self._peer = peer
            if not self._silent:
                peer.handshake(self._refuse)
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    @property
    def peer(self) -> Peer:
        self._ready.wait(10)
        if self._error is not None:
            raise AssertionError(f"the scripted server failed: {self._error!r}") from self._error
        assert self._peer is not None, "no client connected"
        return self._peer

    @contextlib.contextmanager
    def answering(self) -> Iterator[list[Frame]]:
        """While inside, a thread reads the client's frames (answering pings and a close); they are collected
        in the yielded list."""
        peer, seen, stop = self.peer, [], threading.Event()

        def read() -> None:
            while not stop.is_set():
                try:
                    frames = peer.frames(timeout=0.05)
                except TimeoutError:
                    continue
                except OSError:
                    return
                seen.extend(frames)
                if not frames:
                    return

        thread = threading.Thread(target=read, name="scripted-ws-reader", daemon=True)
        thread.start()
        try:
            yield seen
        finally:
            stop.set()
            thread.join(5)

    def close(self) -> None:
        self.listener.close()
        self._thread.join(10)
        if self._peer is not None:
            self._peer.sock.close()


def refusal(status: int, body: bytes, **headers: str) -> Response:
    """A handshake response that refuses, with ``body`` and ``headers`` (``Retry_After`` → ``Retry-After``)."""
    fields = Headers({"Content-Length": str(len(body)), **{k.replace("_", "-"): v for k, v in headers.items()}})
    return Response(status, "Refused", fields, body)


def fragments(text: str, cut: int) -> list[Frame]:
    """``text`` as a fragmented text message: two frames cut at byte ``cut``."""
    data = text.encode()
    return [Frame(Opcode.TEXT, data[:cut], fin=False), Frame(Opcode.CONT, data[cut:], fin=True)]
