"""The default blocking transport: a plain socket driving :class:`~corral.client.websocket.ClientWebSocket`.

The calling thread does its own I/O, so a reply costs no thread hand-off. One watchdog thread per
process keeps every idle link alive: once a link has seen no call for a moment, it waits for that
link's socket to turn readable, answers the server's pings, keeps any message for the next ``recv``, and
pings a silent server itself. ``wss://`` URLs go through ``websockets.sync`` instead
(:func:`websockets_connect`).
"""

from __future__ import annotations

import contextlib
import inspect
import select
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as _sync_connect
from websockets.typing import Subprotocol

from .websocket import CLOSE_TIMEOUT, PING_INTERVAL, ClientWebSocket, handshake_error

#: The watchdog takes over a link that has seen no call for this long (well under any server's ping timeout).
IDLE = 0.25
_BUFFER = 1 << 16

#: websockets >= 17.1 warns when a connection opened without ``with`` is used, unless it is opened as legacy.
_DIRECT: dict[str, Any] = {"legacy": True} if "legacy" in inspect.signature(_sync_connect).parameters else {}


class SocketConnection:
    """An open WebSocket on a blocking socket: a :class:`~corral.client.transport.Connection`.

    Every use of the socket and the protocol holds one lock. The caller's ``send`` and ``recv`` take it
    directly; the watchdog (:class:`_Watchdog`) only when the caller has left the link alone for
    :data:`IDLE` seconds, only without waiting for it, and only for data already on the socket, so it never
    delays a call by more than handling that data.
    """

    def __init__(self, sock: socket.socket, ws: ClientWebSocket, early: list[str | bytes],
                 ping_interval: float = PING_INTERVAL) -> None:
        self.socket = sock
        self._ws = ws
        self._inbox: deque[str | bytes] = deque(early)
        self._lock = threading.Lock()
        self._buffer = bytearray(_BUFFER)
        self._view = memoryview(self._buffer)
        self._poll = select.poll()  # the lock holder's
        self._poll.register(sock, select.POLLIN)
        self._wait_limit = 0.0
        self._limit_wait(ping_interval)
        self._ping_interval = ping_interval
        self._next_tick = time.monotonic() + ping_interval
        self._calls = 0  # bumped by every call: the watchdog tells an idle link by it not moving
        self._flush()  # what the handshake's last read called for (a pong, a close's echo)
        _WATCHDOG.add(self)

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    def send(self, message: str | bytes) -> None:
        self._calls += 1
        with self._lock:
            if self._ws.open:
                self._ws.send(message)
                self._flush()
            if not self._ws.open:
                raise self._closed()

    def recv(self, timeout: float | None = None) -> str | bytes:
        self._calls += 1
        with self._lock:
            inbox = self._inbox
            deadline = None if timeout is None else time.monotonic() + timeout
            while not inbox:
                now = time.monotonic()
                if now >= self._next_tick:
                    self._keepalive(now)
                if self._ws.closed:
                    raise self._closed()
                wait = self._ping_interval if deadline is None else min(deadline - now, self._ping_interval)
                if wait > 0:
                    self._limit_wait(wait)
                # A blocking read (one syscall, no poll first) that the kernel gives up after the limit.
                if not self._read(0 if wait > 0 else socket.MSG_DONTWAIT) and deadline is not None \
                        and time.monotonic() >= deadline:
                    raise TimeoutError(f"no message within {timeout}s")
            return inbox.popleft()

    def close(self) -> None:
        """Close the link: the closing handshake within :data:`CLOSE_TIMEOUT` seconds, then the socket. The
        watchdog forgets it. Idempotent."""
        self._calls += 1
        with self._lock:
            if self._ws.open:
                self._ws.close()
                self._flush()
            deadline = time.monotonic() + CLOSE_TIMEOUT
            while not self._ws.closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._poll.poll(remaining * 1000.0):
                    break
                self._read(socket.MSG_DONTWAIT)
            self._release()

    # -- with the lock held ----------------------------------------------------------------------

    def _read(self, flags: int = 0) -> bool:
        """Read what the socket has, answer what needs answering, keep the messages. False when the read
        timed out (see :meth:`_limit_wait`) or, with ``MSG_DONTWAIT``, found nothing."""
        try:
            size = self.socket.recv_into(self._buffer, 0, flags)
        except BlockingIOError:
            return False
        except OSError:
            size = 0
        if size:
            self._inbox.extend(self._ws.receive(self._view[:size]))
        else:
            self._ws.receive_eof()
        self._flush()
        return True

    def _limit_wait(self, seconds: float) -> None:
        """Make a blocking read give up after about ``seconds`` (``SO_RCVTIMEO``): shortened at once, lengthened
        only when far too short, so that the usual call costs no system call."""
        if seconds < self._wait_limit or seconds > 2 * self._wait_limit:
            self._wait_limit = seconds
            whole = int(seconds)
            micros = max(int((seconds - whole) * 1e6), 0 if whole else 1)  # 0 s would mean no limit at all
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("@ll", whole, micros))

    def _flush(self) -> None:
        data = self._ws.outgoing()
        if data and not self._ws.closed:
            try:
                self.socket.sendall(data)
            except OSError:
                self._ws.receive_eof()  # the link is gone: it reads as closed from now on

    def _keepalive(self, now: float) -> None:
        self._next_tick = now + self._ping_interval
        if self._ws.keepalive():
            self._flush()
        else:
            self._ws.receive_eof()

    def _closed(self) -> Exception:
        """The ``ConnectionClosed`` for a call on a link that is closing or closed (a closed one is released)."""
        if self._ws.closed:
            self._release()
        return self._ws.close_error()

    def _release(self) -> None:
        """Leave the watchdog, then shut the socket down and close it."""
        _WATCHDOG.remove(self)
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()

    def _tend(self, now: float) -> bool:
        """The watchdog's turn on an idle link: unless a caller holds the lock, read what the socket has, ping
        on schedule, and let go of a link that closed meanwhile. False when a caller held the lock."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            while not self._ws.closed and self._read(socket.MSG_DONTWAIT):
                pass
            if now >= self._next_tick:
                self._keepalive(now)
            if self._ws.closed:
                self._release()
        finally:
            self._lock.release()
        return True


class _Watchdog:
    """The one thread that keeps every idle :class:`SocketConnection` of the process alive.

    Every :data:`IDLE` seconds it looks at each link. A link that saw a call since the last look is busy:
    its caller does the reading, and its socket is not watched. A link that saw none is idle: its socket is
    watched, and when it turns readable, or the link's ping is due, the thread takes the link's lock
    without waiting (a caller that holds it is reading anyway) and tends it. The thread starts with the
    first link and ends when the last one closes.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entered when tending a link that then closes
        self._links: dict[SocketConnection, int] = {}  # each link's call count at the last look
        self._watched: set[SocketConnection] = set()
        self._selector = selectors.DefaultSelector()
        self._thread: threading.Thread | None = None

    def add(self, link: SocketConnection) -> None:
        with self._lock:
            self._links[link] = -1  # busy until a look finds it idle
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="corral-ws-keepalive", daemon=True)
                self._thread.start()

    def remove(self, link: SocketConnection) -> None:
        with self._lock:
            self._links.pop(link, None)
            self._unwatch(link)

    def watching(self, link: SocketConnection) -> bool:
        with self._lock:
            return link in self._links

    def _run(self) -> None:
        next_look = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                looking = now >= next_look
                if looking:
                    if not self._links:
                        self._thread = None
                        return
                    next_look = now + IDLE
                wake = self._look(now, looking, next_look)
            for key, _ in self._selector.select(max(wake - time.monotonic(), 0.0)):
                with self._lock:
                    self._ready(key.data)

    def _look(self, now: float, looking: bool, wake: float) -> float:
        """Sort the links into busy and idle (when ``looking``), tend the idle ones whose ping is due; when to
        wake up next (``wake`` at the latest)."""
        for link, seen in list(self._links.items()):
            if looking:
                calls = link._calls
                self._links[link] = calls
                if calls != seen or link._lock.locked():
                    self._unwatch(link)
                    continue
                if link not in self._watched:
                    try:
                        self._selector.register(link.socket, selectors.EVENT_READ, link)
                    except (ValueError, KeyError, OSError):
                        continue  # its socket is being closed: the link leaves on its own
                    self._watched.add(link)
            if link not in self._watched:
                continue
            if now >= link._next_tick:
                link._tend(now)
            wake = min(wake, link._next_tick)
        return wake

    def _ready(self, link: SocketConnection) -> None:
        """An idle link's socket turned readable."""
        if link not in self._watched:
            return
        if link._calls != self._links.get(link) or not link._tend(time.monotonic()):
            self._unwatch(link)  # a call came: it reads whatever woke us

    def _unwatch(self, link: SocketConnection) -> None:
        if link in self._watched:
            self._watched.discard(link)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(link.socket)


_WATCHDOG = _Watchdog()


def socket_connect(url: str, subprotocols: Sequence[str], headers: Mapping[str, str], open_timeout: float,
                   *, ping_interval: float = PING_INTERVAL) -> SocketConnection | ClientConnection:
    """The default :class:`~corral.client.transport.Connect`: a :class:`SocketConnection` for ``ws://`` and
    ``unix://`` URLs; ``wss://`` goes through :func:`websockets_connect` (TLS on a socket the caller reads
    directly would need its own buffering rules)."""
    if url.startswith("wss://"):
        return websockets_connect(url, subprotocols, headers, open_timeout)
    sock: socket.socket | None = None
    try:
        ws = ClientWebSocket(url, subprotocols, headers)
        deadline = time.monotonic() + open_timeout
        sock = _dial(ws, open_timeout)
        sock.sendall(ws.outgoing())
        early: list[str | bytes] = []  # what the server sent right after accepting (corral/1: its hello)
        while not ws.accepted():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out during the opening handshake")
            sock.settimeout(remaining)
            data = sock.recv(_BUFFER)
            if data:
                early += ws.receive(data)
            else:
                ws.receive_eof()
        sock.settimeout(None)
    except Exception as exc:
        if sock is not None:
            sock.close()
        raise handshake_error(url, exc) from exc
    return SocketConnection(sock, ws, early, ping_interval)


def _dial(ws: ClientWebSocket, timeout: float) -> socket.socket:
    if ws.unix_path is None:
        sock = socket.create_connection((ws.uri.host, ws.uri.port), timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(ws.unix_path)
    except BaseException:
        sock.close()
        raise
    return sock


def websockets_connect(url: str, subprotocols: Sequence[str], headers: Mapping[str, str],
                       open_timeout: float) -> ClientConnection:
    """A :class:`~corral.client.transport.Connect` through ``websockets.sync`` (a reader thread per
    connection: one thread hand-off per message). The default uses it for ``wss://``."""
    try:
        connection: ClientConnection = _sync_connect(url, **websockets_options(subprotocols, headers, open_timeout),
                                                     **_DIRECT)
    except Exception as exc:
        raise handshake_error(url, exc) from exc
    return connection


def websockets_options(subprotocols: Sequence[str], headers: Mapping[str, str], open_timeout: float) -> dict[str, Any]:
    """The ``websockets`` connect options of a Corral client: no size limit, no compression."""
    return {
        "subprotocols": [Subprotocol(s) for s in subprotocols],
        "additional_headers": headers,
        "open_timeout": open_timeout,
        "max_size": None,
        "compression": None,
    }
