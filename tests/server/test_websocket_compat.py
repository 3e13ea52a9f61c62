"""The compat dialect on ``/ws``: OpenEnv's frames, and robustness against every kind of bad input."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from corral.envs.echo import EchoEnvironment

from ..support import CountingEnv, HangingEnv, RunningServer, SlowEnv, ask, recv, send


def closed_with(ws: ClientConnection, timeout: float = 5) -> int | None:
    """Wait for the server to close the connection; fail if any frame arrives first. Returns the close code."""
    try:
        frame = ws.recv(timeout)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None
    pytest.fail(f"expected the connection to close, got a frame: {frame!r}")


def assert_error(frame: dict[str, Any], code: str) -> dict[str, Any]:
    assert frame["type"] == "error", frame
    data = frame["data"]
    assert data["code"] == code, frame
    assert isinstance(data["message"], str)
    assert data["message"]
    assert "id" not in frame
    return data


def assert_usable(ws: ClientConnection, message: str = "still here") -> None:
    reply = ask(ws, {"type": "step", "data": {"message": message}})
    assert reply == {
        "type": "observation",
        "data": {"observation": {"echoed_message": message, "message_length": len(message)},
                 "reward": pytest.approx(len(message) * 0.1), "done": False},
    }


@pytest.fixture
def echo_ws(echo_server: RunningServer) -> Any:
    with echo_server.ws() as ws:
        reply = ask(ws, {"type": "reset"})
        assert reply["type"] == "observation"
        yield ws


def test_no_subprotocol_selects_compat(echo_server: RunningServer) -> None:
    with echo_server.ws() as ws:
        assert ws.subprotocol is None
        with pytest.raises(TimeoutError):
            ws.recv(0.05)  # no hello frame in compat


def test_reset_step_state_frames(echo_server: RunningServer) -> None:
    with echo_server.ws() as ws:
        reset = ask(ws, {"type": "reset", "data": {"episode_id": "ep-1", "seed": 3}})
        assert reset == {
            "type": "observation",
            "data": {"observation": {"echoed_message": "Echo environment ready!", "message_length": 0},
                     "reward": 0.0, "done": False},
        }
        step = ask(ws, {"type": "step", "data": {"message": "hello"}})
        assert step["type"] == "observation"
        assert set(step["data"]) == {"observation", "reward", "done"}
        assert step["data"]["observation"] == {"echoed_message": "hello", "message_length": 5}
        assert step["data"]["reward"] == pytest.approx(0.5)
        state = ask(ws, {"type": "state"})
        assert state == {"type": "state", "data": {"episode_id": "ep-1", "step_count": 1}}


def test_reset_without_data(echo_ws: ClientConnection) -> None:
    reply = ask(echo_ws, {"type": "reset"})
    assert reply["data"]["observation"]["echoed_message"] == "Echo environment ready!"
    assert ask(echo_ws, {"type": "state"})["data"]["step_count"] == 0


def test_metadata_stripped_and_no_corral_fields(start_server: Any) -> None:
    server = start_server(CountingEnv)
    with server.ws() as ws:
        ask(ws, {"type": "reset"})
        reply = ask(ws, {"type": "step", "data": {"n": 4}, "id": 7})
        assert reply == {"type": "observation", "data": {"observation": {"total": 4}, "reward": 4.0, "done": False}}


def test_close_frame_closes_with_1000_and_no_reply(echo_ws: ClientConnection) -> None:
    send(echo_ws, {"type": "close"})
    assert closed_with(echo_ws) == 1000


def test_close_frees_the_session(start_server: Any) -> None:
    CountingEnv.reset_counters()
    server = start_server(CountingEnv)
    with server.ws() as ws:
        ask(ws, {"type": "reset"})
        assert len(server.manager.sessions) == 1
        send(ws, {"type": "close"})
        assert closed_with(ws) == 1000
    assert server.manager.active == 0
    assert CountingEnv.closed == 1


def test_invalid_json_keeps_session(echo_ws: ClientConnection) -> None:
    echo_ws.send("{not json")
    assert_error(recv(echo_ws), "INVALID_JSON")
    assert_usable(echo_ws)


def test_json_array_keeps_session(echo_ws: ClientConnection) -> None:
    echo_ws.send('[{"type": "step", "data": {"message": "x"}}]')
    data = assert_error(recv(echo_ws), "INVALID_JSON")
    assert "object" in data["message"]
    assert_usable(echo_ws)


@pytest.mark.parametrize("payload", ['"reset"', "42", "null", "true"])
def test_json_scalars_keep_session(echo_ws: ClientConnection, payload: str) -> None:
    echo_ws.send(payload)
    assert_error(recv(echo_ws), "INVALID_JSON")
    assert_usable(echo_ws)


def test_binary_frame_keeps_session(echo_ws: ClientConnection) -> None:
    echo_ws.send(b'{"type": "step", "data": {"message": "x"}}')
    data = assert_error(recv(echo_ws), "INVALID_JSON")
    assert "binary" in data["message"]
    assert_usable(echo_ws)


def test_unknown_type_keeps_session(echo_ws: ClientConnection) -> None:
    data = assert_error(ask(echo_ws, {"type": "teleport"}), "UNKNOWN_TYPE")
    assert "teleport" in data["message"]
    assert_usable(echo_ws)


def test_corral_types_unknown_in_compat(echo_ws: ClientConnection) -> None:
    assert_error(ask(echo_ws, {"type": "step_many", "data": {"items": []}}), "UNKNOWN_TYPE")
    assert_error(ask(echo_ws, {"type": "ping"}), "UNKNOWN_TYPE")
    assert_usable(echo_ws)


@pytest.mark.parametrize("frame", [{"data": {"message": "x"}}, {"type": None}, {"type": 5}, {}])
def test_missing_or_bad_type_keeps_session(echo_ws: ClientConnection, frame: dict[str, Any]) -> None:
    assert_error(ask(echo_ws, frame), "UNKNOWN_TYPE")
    assert_usable(echo_ws)


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({}, "message"),
        ({"message": 5}, "message"),
        ({"message": ["a"]}, "message"),
        ({"message": "x", "bogus": 1}, "bogus"),
        (None, None),
        ("just a string", None),
    ],
)
def test_bad_action_is_validation_error(echo_ws: ClientConnection, data: Any, loc: str | None) -> None:
    frame: dict[str, Any] = {"type": "step"}
    if data is not None:
        frame["data"] = data
    error = assert_error(ask(echo_ws, frame), "VALIDATION_ERROR")
    assert isinstance(error["errors"], list)
    assert error["errors"]
    for item in error["errors"]:
        assert {"type", "loc", "msg"} <= set(item)
    if loc is not None:
        assert [loc] in [list(item["loc"]) for item in error["errors"]]
    assert_usable(echo_ws)


@pytest.mark.parametrize(
    "data",
    [{"seed": -1}, {"seed": "zero"}, {"seed": True}, {"seed": 1.5}, {"episode_id": 5}, {"episode_id": "x" * 256},
     [1, 2], "options"],
)
def test_bad_reset_options_are_validation_errors(echo_ws: ClientConnection, data: Any) -> None:
    error = assert_error(ask(echo_ws, {"type": "reset", "data": data}), "VALIDATION_ERROR")
    assert "errors" in error
    assert_usable(echo_ws)


def test_oversized_frame_keeps_session(start_server: Any) -> None:
    server = start_server(EchoEnvironment, max_message_bytes=1024)
    with server.ws() as ws:
        ask(ws, {"type": "reset"})
        data = assert_error(ask(ws, {"type": "step", "data": {"message": "x" * 4000}}), "FRAME_TOO_LARGE")
        assert "1024" in data["message"]
        assert_usable(ws, "y" * 500)


def test_frame_over_the_transport_limit_closes_only_that_socket(start_server: Any) -> None:
    server = start_server(EchoEnvironment, max_message_bytes=1024)
    limit = server.server.config.ws_max_size
    with server.ws() as ws, server.ws() as other:
        ask(ws, {"type": "reset"})
        ask(other, {"type": "reset"})
        ws.send("x" * (limit + 1))
        assert closed_with(ws) == 1009
        assert_usable_after_reset(other)


def assert_usable_after_reset(ws: ClientConnection) -> None:
    assert ask(ws, {"type": "step", "data": {"message": "ok"}})["type"] == "observation"


@pytest.mark.parametrize(
    ("env", "frame"),
    [
        (SlowEnv, '{"type": "step", "data": {"delay": 0}}'),
        (EchoEnvironment, '{"type": "step", "data": {"message": "x"}}'),
    ],
    ids=["async", "inline"],
)
def test_flood_is_answered_or_rate_limited(start_server: Any, env: Any, frame: str) -> None:
    server = start_server(env, max_in_flight=4)
    count = 2000
    with server.ws() as ws:
        ask(ws, {"type": "reset"})
        for _ in range(count):
            ws.send(frame)
        replies = [recv(ws, 10) for _ in range(count)]
        kinds = {r["type"] for r in replies}
        assert kinds <= {"observation", "error"}
        errors = [r for r in replies if r["type"] == "error"]
        assert {e["data"]["code"] for e in errors} <= {"RATE_LIMITED"}
        stepped = count - len(errors)
        assert stepped >= 1
        assert ask(ws, {"type": "state"})["data"]["step_count"] == stepped
        with pytest.raises(TimeoutError):
            ws.recv(0.05)  # exactly one reply per frame
    with server.ws() as other:
        assert ask(other, {"type": "reset"})["type"] == "observation"


def test_step_before_reset(echo_server: RunningServer) -> None:
    with echo_server.ws() as ws:
        assert_error(ask(ws, {"type": "step", "data": {"message": "x"}}), "RESET_NEEDED")
        assert ask(ws, {"type": "reset"})["type"] == "observation"
        assert_usable(ws)


def test_environment_error_keeps_session(start_server: Any) -> None:
    server = start_server(SlowEnv)
    with server.ws() as ws:
        ask(ws, {"type": "reset"})
        data = assert_error(ask(ws, {"type": "step", "data": {"fail": True}}), "EXECUTION_ERROR")
        assert "the environment broke on purpose" in data["message"]
        reply = ask(ws, {"type": "step", "data": {"delay": 0}})
        assert reply["type"] == "observation"
        assert ask(ws, {"type": "state"})["data"]["step_count"] == 1


def test_hanging_environment_hits_the_deadline(start_server: Any) -> None:
    HangingEnv.release.clear()
    HangingEnv.closed = 0
    server = start_server(HangingEnv, step_timeout_s=0.3)
    try:
        with server.ws() as ws, server.ws() as other:
            ask(ws, {"type": "reset"})
            ask(other, {"type": "reset"})
            send(ws, {"type": "step", "data": {"hang": True}})
            # the server keeps serving other sessions while one hangs
            assert ask(other, {"type": "step", "data": {}})["type"] == "observation"
            data = assert_error(recv(ws), "DEADLINE_EXCEEDED")
            assert "0.3" in data["message"]
            # the session is closed, so its connection closes too (compat: one connection, one session)
            assert closed_with(ws) == 1000
            assert len(server.manager.sessions) == 1
            assert ask(other, {"type": "state"})["data"]["step_count"] == 1
    finally:
        HangingEnv.release.set()


def test_mcp_frame(guess_server: RunningServer) -> None:
    with guess_server.ws() as ws:
        ask(ws, {"type": "reset", "data": {"high": 10}})
        reply = ask(ws, {"type": "mcp", "data": {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}})
        assert reply["type"] == "mcp"
        assert reply["data"]["id"] == 3
        assert [t["name"] for t in reply["data"]["result"]["tools"]] == ["range_size"]
