"""Frame codecs: JSON text frames (compat and ``corral.v1``) and msgpack binary frames (``corral.v1+msgpack``)."""

from __future__ import annotations

from typing import Any, Literal

import msgpack
import orjson

SUBPROTOCOL_JSON = "corral.v1"
SUBPROTOCOL_MSGPACK = "corral.v1+msgpack"
SUBPROTOCOLS = (SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON)


class Codec:
    """Encodes frames to what goes on the wire and back. ``dump_mode`` is how pydantic models are dumped."""

    name: str = "json"
    binary: bool = False
    #: ``model_dump`` mode: JSON needs JSON-safe values (bytes become base64); msgpack keeps bytes raw.
    dump_mode: Literal["json", "python"] = "json"

    def encode(self, frame: dict[str, Any]) -> bytes:
        return orjson.dumps(frame)

    def decode(self, data: str | bytes) -> Any:
        return orjson.loads(data)


class MsgpackCodec(Codec):
    name = "msgpack"
    binary = True
    dump_mode = "python"

    def encode(self, frame: dict[str, Any]) -> bytes:
        return msgpack.packb(frame, use_bin_type=True, default=_msgpack_default)

    def decode(self, data: str | bytes) -> Any:
        if isinstance(data, str):
            data = data.encode()
        return msgpack.unpackb(data, raw=False, strict_map_key=False)


def _msgpack_default(obj: Any) -> Any:
    # Values pydantic leaves as Python objects in "python" mode (datetime, UUID, Enum...) travel as JSON would.
    return orjson.loads(orjson.dumps(obj, default=str))


JSON = Codec()
MSGPACK = MsgpackCodec()
#: Every codec by name.
CODECS: dict[str, Codec] = {JSON.name: JSON, MSGPACK.name: MSGPACK}


def codec_for_subprotocol(subprotocol: str | None) -> Codec:
    return MSGPACK if subprotocol == SUBPROTOCOL_MSGPACK else JSON
