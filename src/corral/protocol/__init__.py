"""The wire, shared by server and client (which never import each other)."""

from .codec import JSON, MSGPACK, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, SUBPROTOCOLS, Codec, codec_for_subprotocol
from .frames import (
    HEADER_OPEN,
    HEADER_RESUME_SESSION,
    HEADER_RESUME_TOKEN,
    HEADER_SESSION,
    HEADER_WAIT,
    PROTOCOL_VERSION,
    Dialect,
    ErrorCode,
    envelope,
    error_frame,
)

__all__ = [
    "HEADER_OPEN",
    "HEADER_RESUME_SESSION",
    "HEADER_RESUME_TOKEN",
    "HEADER_SESSION",
    "HEADER_WAIT",
    "JSON",
    "MSGPACK",
    "PROTOCOL_VERSION",
    "SUBPROTOCOLS",
    "SUBPROTOCOL_JSON",
    "SUBPROTOCOL_MSGPACK",
    "Codec",
    "Dialect",
    "ErrorCode",
    "codec_for_subprotocol",
    "envelope",
    "error_frame",
]
