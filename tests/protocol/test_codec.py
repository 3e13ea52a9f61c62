"""Codecs and frame shapes: no sockets."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import Enum
from typing import Any

import msgpack
import orjson
import pytest

from corral import Observation, StepResult
from corral.protocol import (
    JSON,
    MSGPACK,
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    SUBPROTOCOLS,
    Dialect,
    ErrorCode,
    codec_for_subprotocol,
    envelope,
    error_frame,
)


class Pixels(Observation):
    frame: bytes
    label: str


class Color(Enum):
    RED = "red"


def test_subprotocol_names() -> None:
    assert SUBPROTOCOL_JSON == "corral.v1"
    assert SUBPROTOCOL_MSGPACK == "corral.v1+msgpack"
    assert SUBPROTOCOLS == (SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON)


def test_codec_for_subprotocol() -> None:
    assert codec_for_subprotocol(SUBPROTOCOL_MSGPACK) is MSGPACK
    assert codec_for_subprotocol(SUBPROTOCOL_JSON) is JSON
    assert codec_for_subprotocol(None) is JSON
    assert codec_for_subprotocol("something-else") is JSON


def test_json_round_trip() -> None:
    frame = {"type": "step", "id": 3, "data": {"message": "héllo", "n": [1, 2.5, None, True]}}
    encoded = JSON.encode(frame)
    assert isinstance(encoded, bytes)
    assert JSON.decode(encoded) == frame
    assert JSON.decode(encoded.decode()) == frame
    assert (JSON.name, JSON.binary, JSON.dump_mode) == ("json", False, "json")


def test_json_decode_errors() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        JSON.decode("{nope")
    assert JSON.decode("[1]") == [1]  # not an object: the server refuses it, the codec does not judge


def test_msgpack_round_trip_keeps_bytes_raw() -> None:
    payload = bytes(range(256)) * 64
    frame = {"type": "observation", "id": "x", "data": {"observation": {"frame": payload}}}
    encoded = MSGPACK.encode(frame)
    assert isinstance(encoded, bytes)
    assert len(encoded) < len(payload) + 100  # raw bin, not base64
    decoded = MSGPACK.decode(encoded)
    assert decoded == frame
    assert isinstance(decoded["data"]["observation"]["frame"], bytes)
    assert (MSGPACK.name, MSGPACK.binary, MSGPACK.dump_mode) == ("msgpack", True, "python")


def test_msgpack_integer_map_keys() -> None:
    assert MSGPACK.decode(msgpack.packb({1: "a"})) == {1: "a"}


def test_msgpack_falls_back_like_json_for_python_objects() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    ident = uuid.UUID(int=7)
    decoded = MSGPACK.decode(MSGPACK.encode({"when": when, "id": ident, "color": Color.RED}))
    assert decoded == {"when": "2024-01-02T03:04:05+00:00", "id": str(ident), "color": "red"}


def test_msgpack_decode_error() -> None:
    with pytest.raises(msgpack.exceptions.FormatError):
        MSGPACK.decode(b"\xc1")
    with pytest.raises(ValueError, match="incomplete"):
        MSGPACK.decode(b"\x92\x01")


def result(**kwargs: Any) -> StepResult[Pixels]:
    observation = Pixels(frame=b"\x00\xff", label="cat", metadata={"debug": 1})
    return StepResult(observation=observation, **kwargs)


def test_compat_envelope_drops_metadata_and_gymnasium_fields() -> None:
    data = envelope(result(reward=0.5, terminated=True, info={"k": 1}), Dialect.COMPAT, "python")
    assert data == {"observation": {"frame": b"\x00\xff", "label": "cat"}, "reward": 0.5, "done": True}


def test_corral_envelope_keeps_metadata_and_adds_gymnasium_fields() -> None:
    data = envelope(result(truncated=True, info={"k": 1}), Dialect.CORRAL, "python")
    assert data == {
        "observation": {"frame": b"\x00\xff", "label": "cat", "metadata": {"debug": 1}},
        "reward": None, "done": True, "terminated": False, "truncated": True, "info": {"k": 1},
    }


@pytest.mark.parametrize(("terminated", "truncated"), [(False, False), (True, False), (False, True), (True, True)])
def test_done_is_terminated_or_truncated(terminated: bool, truncated: bool) -> None:
    data = envelope(result(terminated=terminated, truncated=truncated), Dialect.CORRAL, "python")
    assert data["done"] is (terminated or truncated)


def test_envelope_does_not_mutate_the_observation() -> None:
    res = result()
    envelope(res, Dialect.COMPAT, "python")
    assert res.observation.metadata == {"debug": 1}


def test_envelope_through_msgpack_keeps_bytes() -> None:
    data = envelope(result(), Dialect.CORRAL, MSGPACK.dump_mode)
    assert MSGPACK.decode(MSGPACK.encode({"data": data}))["data"]["observation"]["frame"] == b"\x00\xff"


def test_error_frame() -> None:
    assert error_frame("RESET_NEEDED", "call reset") == {
        "type": "error", "data": {"message": "call reset", "code": "RESET_NEEDED"}}
    framed = error_frame(ErrorCode.VALIDATION_ERROR, "bad", 4, errors=[{"loc": ["x"]}])
    assert framed["id"] == 4
    assert framed["data"]["errors"] == [{"loc": ["x"]}]
    assert orjson.loads(JSON.encode(framed))["data"]["code"] == "VALIDATION_ERROR"
    assert "id" not in error_frame("X", "y", None)
    assert error_frame("X", "y", 0)["id"] == 0


def test_error_codes_are_their_names() -> None:
    for code in ErrorCode:
        assert code.value == code.name
