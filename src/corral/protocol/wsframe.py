"""Whole WebSocket data frames (RFC 6455 §5.2) on the hot path, without ``websockets``' generator parser.

Both ends keep ``websockets``' sans-I/O protocol for the link's state: the handshake, control frames,
fragmented messages, frames split across reads and the closing handshake. What passes through here is only
the common case, a whole unfragmented text or binary frame, and only while that protocol's parser waits for
the first byte of a frame (:func:`at_frame_boundary`), so the two never disagree on where a frame starts.
"""

from __future__ import annotations

import os

from websockets.protocol import Protocol
from websockets.streams import StreamReader

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C extension is missing only on unusual builds
    from websockets.utils import apply_mask

__all__ = ["apply_mask", "at_frame_boundary", "data_frame", "header", "masked_frame"]

#: FIN + opcode: the first byte of a whole text or binary frame.
TEXT = 0x81
BINARY = 0x82

_AT_EOF = StreamReader.at_eof.__code__

Buffer = bytes | bytearray | memoryview


def header(size: int, binary: bool, masked: bool = False) -> bytes:
    """The header of a whole data frame carrying ``size`` bytes (without the mask key)."""
    first = BINARY if binary else TEXT
    bit = 0x80 if masked else 0
    if size < 126:
        return bytes((first, bit | size))
    if size < 1 << 16:
        return bytes((first, bit | 126)) + size.to_bytes(2, "big")
    return bytes((first, bit | 127)) + size.to_bytes(8, "big")


def masked_frame(payload: bytes, binary: bool) -> bytes:
    """A client's data frame: the header, a fresh random mask key, and the masked payload."""
    key = os.urandom(4)
    return header(len(payload), binary, masked=True) + key + apply_mask(payload, key)


def data_frame(data: Buffer, at: int, masked: bool, limit: int | None) -> tuple[int, int] | None:
    """Where the payload of the whole data frame at ``data[at]`` lies, as ``(start, end)``; for a masked frame
    the key is the 4 bytes before ``start``.

    None when there is no such frame there: a control frame, a fragment, a frame not all received yet, a
    payload over ``limit``, or masking other than ``masked`` (a protocol error ``websockets`` then reports).
    """
    size = len(data)
    if size - at < 2:
        return None
    first, second = data[at], data[at + 1]
    if (first != TEXT and first != BINARY) or (second >= 0x80) is not masked:
        return None
    length = second & 0x7F
    start = at + 2
    if length == 126:
        start += 2
        length = int.from_bytes(data[at + 2 : start], "big")
    elif length == 127:
        start += 8
        length = int.from_bytes(data[at + 2 : start], "big")
    if masked:
        start += 4
    end = start + length
    if end > size or (limit is not None and length > limit):
        return None
    return start, end


def at_frame_boundary(protocol: Protocol) -> bool:
    """Whether ``protocol``'s parser holds no bytes and waits for the first byte of a frame, so that bytes
    read next may be framed by :func:`data_frame` instead.

    False in the middle of a frame (its header already consumed, say), and also on a ``websockets``
    release whose parser looks different: the fast path is then off, never wrong.
    """
    if protocol.reader.buffer:
        return False
    parser = protocol.parser
    while True:
        inner = getattr(parser, "gi_yieldfrom", None)
        if inner is None:
            break
        parser = inner
    return getattr(parser, "gi_code", None) is _AT_EOF
