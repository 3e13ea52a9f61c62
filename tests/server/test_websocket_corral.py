"""The corral/1 dialect on ``/ws``: hello, request ids, pipelining, msgpack, batches, deadlines."""

from __future__ import annotations

import base64
from typing import Any

import msgpack
import orjson
import pytest
from websockets.sync.client import ClientConnection

from corral import EnvClient, EnvInfo, Environment, Observation, State, StepResult
from corral.envs.guess import GuessEnvironment
from corral.protocol import PROTOCOL_VERSION, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK

from ..support import (
    BlobEnv,
    BlobObservation,
    CountAction,
    CountingEnv,
    InlineCountingEnv,
    RunningServer,
    SlowEnv,
    ask,
    recv,
    send,
)


def hello(ws: ClientConnection) -> dict[str, Any]:
    frame = recv(ws)
    assert frame["type"] == "hello", frame
    data: dict[str, Any] = frame["data"]
    return data


def corral_ws(server: RunningServer, headers: dict[str, str] | None = None) -> ClientConnection:
    ws = server.ws([SUBPROTOCOL_JSON], headers)
    assert ws.subprotocol == SUBPROTOCOL_JSON
    return ws


def assert_error(frame: dict[str, Any], code: str, frame_id: Any = None) -> dict[str, Any]:
    assert frame["type"] == "error", frame
    assert frame["data"]["code"] == code, frame
    assert frame.get("id") == frame_id
    data: dict[str, Any] = frame["data"]
    return data


def collect(ws: ClientConnection, count: int, timeout: float = 5) -> dict[Any, dict[str, Any]]:
    replies = [recv(ws, timeout) for _ in range(count)]
    by_id = {r.get("id"): r for r in replies}
    assert len(by_id) == count, replies
    return by_id


# -- negotiation and hello -----------------------------------------------------------------------


def test_hello(echo_server: RunningServer) -> None:
    with corral_ws(echo_server) as ws:
        data = hello(ws)
    assert data["protocol"] == PROTOCOL_VERSION == "corral/1"
    assert data["codec"] == "json"
    assert data["env"] == {"name": "echo", "version": "1.0.0"}
    assert isinstance(data["session"], str)
    assert data["session"]
    assert isinstance(data["resume_token"], str)
    assert len(data["resume_token"]) >= 16
    assert data["resumed"] is False
    config = echo_server.config
    assert data["limits"] == {
        "max_message_bytes": config.max_message_bytes,
        "step_deadline_s": config.step_timeout_s,
        "lease_s": config.lease_s,
        "max_in_flight": config.max_in_flight,
        "max_sessions_per_connection": config.max_sessions_per_connection,
    }


def test_each_connection_gets_its_own_session(echo_server: RunningServer) -> None:
    with corral_ws(echo_server) as a, corral_ws(echo_server) as b:
        first, second = hello(a), hello(b)
    assert first["session"] != second["session"]
    assert first["resume_token"] != second["resume_token"]


def test_msgpack_preferred_when_offered(echo_server: RunningServer) -> None:
    with echo_server.ws([SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK]) as ws:
        assert ws.subprotocol == SUBPROTOCOL_MSGPACK
        frame = ws.recv(5)
        assert isinstance(frame, bytes)
        assert msgpack.unpackb(frame)["data"]["codec"] == "msgpack"


def test_unknown_subprotocol_falls_back_to_compat(echo_server: RunningServer) -> None:
    with echo_server.ws(["graphql-ws"]) as ws:
        assert ws.subprotocol is None
        reply = ask(ws, {"type": "reset"})
        assert set(reply["data"]) == {"observation", "reward", "done"}


def test_open_header_zero_opens_no_session(echo_server: RunningServer) -> None:
    with corral_ws(echo_server, {"X-Corral-Open": "0"}) as ws:
        data = hello(ws)
        assert data["session"] is None
        assert data["resume_token"] is None
        assert_error(ask(ws, {"type": "reset", "id": 1}), "SESSION_NOT_FOUND", 1)
        assert ask(ws, {"type": "ping", "id": 2}) == {"type": "pong", "id": 2}


# -- ids and pipelining --------------------------------------------------------------------------


def test_ids_are_echoed(echo_server: RunningServer) -> None:
    with corral_ws(echo_server) as ws:
        hello(ws)
        assert ask(ws, {"type": "reset", "id": 1})["id"] == 1
        reply = ask(ws, {"type": "step", "id": "abc", "data": {"message": "hi"}})
        assert reply["id"] == "abc"
        assert reply["type"] == "observation"
        state = ask(ws, {"type": "state", "id": 3})
        assert state["type"] == "state"
        assert state["id"] == 3
        assert state["data"]["step_count"] == 1
        assert ask(ws, {"type": "ping", "id": 4.5}) == {"type": "pong", "id": 4.5}
        assert ask(ws, {"type": "ping", "id": None}) == {"type": "pong", "id": None}


def test_request_without_id_gets_reply_without_id(echo_server: RunningServer) -> None:
    with corral_ws(echo_server) as ws:
        hello(ws)
        reply = ask(ws, {"type": "reset"})
        assert reply["type"] == "observation"
        assert reply.get("id") is None


def test_pipelined_requests_on_one_session_run_in_order(start_server: Any) -> None:
    server = start_server(CountingEnv)
    with corral_ws(server) as ws:
        hello(ws)
        send(ws, {"type": "reset", "id": "r"})
        for i in range(1, 6):
            send(ws, {"type": "step", "id": f"s{i}", "data": {"n": i}})
        send(ws, {"type": "state", "id": "st"})
        replies = [recv(ws) for _ in range(7)]
    assert [r["id"] for r in replies] == ["r", "s1", "s2", "s3", "s4", "s5", "st"]
    totals = [r["data"]["observation"]["total"] for r in replies[1:6]]
    assert totals == [1, 3, 6, 10, 15]
    assert replies[-1]["data"]["step_count"] == 5


def test_pipelined_requests_on_different_sessions_answer_as_they_finish(start_server: Any) -> None:
    server = start_server(SlowEnv)
    with corral_ws(server, {"X-Corral-Open": "0"}) as ws:
        hello(ws)
        opened = ask(ws, {"type": "open", "id": "o", "data": {"count": 2}})
        slow, fast = (s["session"] for s in opened["data"]["sessions"])
        send(ws, {"type": "reset", "id": 1, "session": slow})
        send(ws, {"type": "reset", "id": 2, "session": fast})
        collect(ws, 2)
        send(ws, {"type": "step", "id": "slow", "session": slow, "data": {"delay": 0.3}})
        send(ws, {"type": "step", "id": "fast", "session": fast, "data": {"delay": 0}})
        first, second = recv(ws), recv(ws)
    assert (first["id"], first["session"]) == ("fast", fast)
    assert (second["id"], second["session"]) == ("slow", slow)
    assert second["data"]["observation"]["delay"] == 0.3


def test_rate_limited_replies_carry_the_id(start_server: Any) -> None:
    server = start_server(SlowEnv, max_in_flight=2)
    with corral_ws(server) as ws:
        hello(ws)
        ask(ws, {"type": "reset", "id": 0})
        for i in range(1, 301):
            send(ws, {"type": "step", "id": i, "data": {"delay": 0}})
        by_id = collect(ws, 300, timeout=10)
        assert set(by_id) == set(range(1, 301))
        limited = [r for r in by_id.values() if r["type"] == "error"]
        assert all(r["data"]["code"] == "RATE_LIMITED" for r in limited)
        stepped = 300 - len(limited)
        assert ask(ws, {"type": "state", "id": "s"})["data"]["step_count"] == stepped


def test_ping(echo_server: RunningServer) -> None:
    with corral_ws(echo_server) as ws:
        hello(ws)
        assert ask(ws, {"type": "ping", "id": 9}) == {"type": "pong", "id": 9}


# -- bad frames ------------------------------------------------------------------------------------


@pytest.fixture
def echo_corral(echo_server: RunningServer) -> Any:
    with corral_ws(echo_server) as ws:
        hello(ws)
        assert ask(ws, {"type": "reset", "id": "r"})["type"] == "observation"
        yield ws


def assert_usable(ws: ClientConnection) -> None:
    reply = ask(ws, {"type": "step", "id": "ok", "data": {"message": "ok"}})
    assert reply["type"] == "observation"
    assert reply["id"] == "ok"


def test_unknown_type_echoes_id(echo_corral: ClientConnection) -> None:
    data = assert_error(ask(echo_corral, {"type": "warp", "id": 4}), "UNKNOWN_TYPE", 4)
    assert "step_many" in data["message"]
    assert_usable(echo_corral)


def test_validation_error_echoes_id(echo_corral: ClientConnection) -> None:
    data = assert_error(ask(echo_corral, {"type": "step", "id": 5, "data": {"message": 1}}), "VALIDATION_ERROR", 5)
    assert data["errors"][0]["loc"] == ["message"]
    assert_usable(echo_corral)


def test_invalid_json_and_binary_frames(echo_corral: ClientConnection) -> None:
    echo_corral.send("{")
    assert_error(recv(echo_corral), "INVALID_JSON")
    echo_corral.send(msgpack.packb({"type": "state"}))
    assert_error(recv(echo_corral), "INVALID_JSON")
    echo_corral.send("[]")
    assert_error(recv(echo_corral), "INVALID_JSON")
    assert_usable(echo_corral)


@pytest.mark.parametrize("frame_id", [[1], {"a": 1}])
def test_unhashable_id_is_refused_and_session_kept(echo_corral: ClientConnection, frame_id: Any) -> None:
    reply = ask(echo_corral, {"type": "step", "id": frame_id, "data": {"message": "x"}})
    assert reply["type"] == "error"
    assert reply["data"]["code"] == "VALIDATION_ERROR"
    assert_usable(echo_corral)


@pytest.mark.parametrize("session", [["x"], {"s": 1}, 5])
def test_bad_session_field_is_refused_and_connection_kept(echo_corral: ClientConnection, session: Any) -> None:
    reply = ask(echo_corral, {"type": "step", "id": 6, "session": session, "data": {"message": "x"}})
    assert reply["type"] == "error"
    assert reply["id"] == 6
    assert reply["data"]["code"] in ("SESSION_NOT_FOUND", "VALIDATION_ERROR")
    assert_usable(echo_corral)


@pytest.mark.parametrize("deadline", [-5, 0, "soon", [1]])
def test_bad_deadline_is_refused_and_session_kept(echo_corral: ClientConnection, deadline: Any) -> None:
    reply = ask(echo_corral, {"type": "step", "id": 7, "deadline_ms": deadline, "data": {"message": "x"}})
    assert_error(reply, "VALIDATION_ERROR", 7)
    assert_usable(echo_corral)
    assert ask(echo_corral, {"type": "state", "id": 8})["data"]["step_count"] == 1


def test_unknown_session_is_not_found(echo_corral: ClientConnection) -> None:
    reply = ask(echo_corral, {"type": "step", "id": 1, "session": "nope", "data": {"message": "x"}})
    data = assert_error(reply, "SESSION_NOT_FOUND", 1)
    assert "nope" in data["message"]


def test_bad_batch_frames(echo_corral: ClientConnection) -> None:
    assert_error(ask(echo_corral, {"type": "step_many", "id": 1, "data": {"items": 5}}), "VALIDATION_ERROR", 1)
    assert_error(ask(echo_corral, {"type": "step_many", "id": 2, "data": [1]}), "VALIDATION_ERROR", 2)
    assert_error(ask(echo_corral, {"type": "open", "id": 3, "data": {"count": 0}}), "VALIDATION_ERROR", 3)
    assert_error(ask(echo_corral, {"type": "open", "id": 4, "data": {"count": True}}), "VALIDATION_ERROR", 4)
    assert_error(ask(echo_corral, {"type": "close_many", "id": 5, "data": {"sessions": "x"}}), "VALIDATION_ERROR", 5)
    assert_error(ask(echo_corral, {"type": "resume", "id": 6, "data": {"sessions": "x"}}), "VALIDATION_ERROR", 6)
    reply = ask(echo_corral, {"type": "step_many", "id": 7, "data": {"items": [{"session": "x", "id": [1]}, 3]}})
    assert reply["type"] == "batch"
    assert reply["id"] == 7
    assert [r["data"]["code"] for r in reply["data"]["results"]] == ["SESSION_NOT_FOUND", "SESSION_NOT_FOUND"]
    assert_usable(echo_corral)


def test_bad_batch_item_ids(echo_server: RunningServer) -> None:
    with corral_ws(echo_server, {"X-Corral-Open": "0"}) as ws:
        hello(ws)
        sid = ask(ws, {"type": "open", "id": 1, "data": {}})["data"]["sessions"][0]["session"]
        ask(ws, {"type": "reset_many", "id": 2, "data": {"items": [{"session": sid}]}})
        items = [{"session": sid, "id": {"x": 1}, "data": {"message": "a"}},
                 {"session": sid, "id": "fine", "data": {"message": "b"}}]
        results = ask(ws, {"type": "step_many", "id": 3, "data": {"items": items}})["data"]["results"]
        assert results[0]["type"] == "error"
        assert results[0]["data"]["code"] == "VALIDATION_ERROR"
        assert results[0]["session"] == sid
        assert results[1]["type"] == "observation"
        assert results[1]["id"] == "fine"
        assert ask(ws, {"type": "state", "id": 4, "session": sid})["data"]["step_count"] == 1


def test_too_many_sessions_per_connection(start_server: Any) -> None:
    server = start_server(max_sessions_per_connection=3)
    with corral_ws(server) as ws:
        hello(ws)
        assert ask(ws, {"type": "open", "id": 1, "data": {"count": 2}})["type"] == "opened"
        data = assert_error(ask(ws, {"type": "open", "id": 2, "data": {"count": 1}}), "VALIDATION_ERROR", 2)
        assert "at most 3" in data["message"]
    assert server.manager.active <= 3


# -- results -----------------------------------------------------------------------------------


def test_observation_keeps_metadata_and_adds_gymnasium_fields(start_server: Any) -> None:
    server = start_server(CountingEnv)
    with corral_ws(server) as ws:
        hello(ws)
        ask(ws, {"type": "reset", "id": 1})
        reply = ask(ws, {"type": "step", "id": 2, "data": {"n": 3}})
    assert reply == {
        "type": "observation",
        "id": 2,
        "data": {"observation": {"total": 3, "metadata": {"step": 1}}, "reward": 3.0, "done": False,
                 "terminated": False, "truncated": False, "info": {"n": 3}},
    }


def test_guess_terminated(guess_server: RunningServer) -> None:
    with corral_ws(guess_server) as ws:
        hello(ws)
        reply = ask(ws, {"type": "reset", "id": 0, "data": {"seed": 7, "high": 100}})
        obs = reply["data"]["observation"]
        assert obs["hint"] == "start"
        assert reply["data"]["terminated"] is False
        for i in range(1, 9):
            guess = (obs["low"] + obs["high"]) // 2
            reply = ask(ws, {"type": "step", "id": i, "data": {"guess": guess}})
            data = reply["data"]
            obs = data["observation"]
            if data["done"]:
                break
            assert data["reward"] == pytest.approx(-0.05)
        assert obs["hint"] == "correct"
        assert data["terminated"] is True
        assert data["truncated"] is False
        assert data["done"] is True
        assert data["reward"] == 1.0
        assert data["info"] == {}
        assert_error(ask(ws, {"type": "step", "id": "late", "data": {"guess": 1}}), "RESET_NEEDED", "late")
        state = ask(ws, {"type": "state", "id": "st"})["data"]
        assert state["found"] is True
        assert state["step_count"] == i


def test_guess_truncated(guess_server: RunningServer) -> None:
    with corral_ws(guess_server) as ws:
        hello(ws)
        ask(ws, {"type": "reset", "id": 0, "data": {"seed": 1, "high": 1000, "max_attempts": 1}})
        data = ask(ws, {"type": "step", "id": 1, "data": {"guess": 0}})["data"]
        assert data["truncated"] is True
        assert data["terminated"] is False
        assert data["done"] is True
        assert_error(ask(ws, {"type": "step", "id": 2, "data": {"guess": 1}}), "RESET_NEEDED", 2)
        assert ask(ws, {"type": "reset", "id": 3, "data": {"seed": 1}})["type"] == "observation"


def test_guess_seed_reproduces_episode(guess_server: RunningServer) -> None:
    def play(ws: ClientConnection) -> list[Any]:
        ask(ws, {"type": "reset", "id": 0, "data": {"seed": 42}})
        return [ask(ws, {"type": "step", "id": g, "data": {"guess": g}})["data"] for g in (10, 50, 90)]

    with corral_ws(guess_server) as a, corral_ws(guess_server) as b:
        hello(a)
        hello(b)
        assert play(a) == play(b)


def test_seed_refused_by_unseedable_env(start_server: Any) -> None:
    class Unseedable(CountingEnv):
        seedable = False

    server = start_server(Unseedable)
    with corral_ws(server) as ws:
        hello(ws)
        data = assert_error(ask(ws, {"type": "reset", "id": 1, "data": {"seed": 1}}), "SEED_NOT_SUPPORTED", 1)
        assert "seed" in data["message"]
        assert ask(ws, {"type": "reset", "id": 2})["type"] == "observation"


def test_environment_error_echoes_id_and_keeps_session(start_server: Any) -> None:
    server = start_server(SlowEnv)
    with corral_ws(server) as ws:
        hello(ws)
        ask(ws, {"type": "reset", "id": 0})
        data = assert_error(ask(ws, {"type": "step", "id": 1, "data": {"fail": True}}), "EXECUTION_ERROR", 1)
        assert "RuntimeError" in data["message"]
        assert "on purpose" in data["message"]
        assert ask(ws, {"type": "step", "id": 2, "data": {}})["type"] == "observation"


# -- msgpack -------------------------------------------------------------------------------------


def test_msgpack_round_trip_with_raw_bytes(start_server: Any) -> None:
    server = start_server(BlobEnv)
    with server.ws([SUBPROTOCOL_MSGPACK]) as ws:
        assert ws.subprotocol == SUBPROTOCOL_MSGPACK
        first = ws.recv(5)
        assert isinstance(first, bytes)
        assert msgpack.unpackb(first)["type"] == "hello"

        def call(frame: dict[str, Any]) -> dict[str, Any]:
            ws.send(msgpack.packb(frame))
            raw = ws.recv(5)
            assert isinstance(raw, bytes)
            reply: dict[str, Any] = msgpack.unpackb(raw)
            return reply

        reset = call({"type": "reset", "id": 1})
        assert reset["data"]["observation"]["blob"] == BlobEnv.blob(4)
        size = 1 << 16
        reply = call({"type": "step", "id": 2, "data": {"size": size}})
        assert reply["id"] == 2
        blob = reply["data"]["observation"]["blob"]
        assert isinstance(blob, bytes)
        assert blob == BlobEnv.blob(size)
        # raw: the frame is barely larger than the payload (base64 would add a third)
        ws.send(msgpack.packb({"type": "step", "id": 3, "data": {"size": size}}))
        raw = ws.recv(5)
        assert len(raw) < size + 512
        assert call({"type": "state", "id": 4})["data"]["step_count"] == 2
        ws.send('{"type": "state", "id": 5}')
        assert msgpack.unpackb(ws.recv(5))["data"]["code"] == "INVALID_JSON"


def test_bytes_over_json_travel_as_base64url(start_server: Any) -> None:
    server = start_server(BlobEnv)
    with corral_ws(server) as ws:  # JSON codec: the bytes are not UTF-8
        hello(ws)
        reply = ask(ws, {"type": "reset", "id": 1})
        assert reply["type"] == "observation"
        assert reply["id"] == 1
        assert base64.urlsafe_b64decode(reply["data"]["observation"]["blob"]) == BlobEnv.blob(4)
        reply = ask(ws, {"type": "step", "id": 2, "data": {"size": 0}})
        assert reply["type"] == "observation"
        assert reply["id"] == 2
        assert reply["data"]["observation"]["blob"] == ""


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_client_gets_the_same_bytes_on_either_codec(start_server: Any, codec: str) -> None:
    server = start_server(BlobEnv)
    with EnvClient(server.url, observation_type=BlobObservation, codec=codec) as env:
        assert env.reset().observation.blob == BlobEnv.blob(4)
        assert env.step({"size": 1000}).observation.blob == BlobEnv.blob(1000)


class InfoAction(CountAction):
    pass


class UnencodableInfoEnv(Environment[InfoAction, Observation, State]):
    action_type = InfoAction
    observation_type = Observation
    info = EnvInfo(name="unencodable")
    inline = True

    def __init__(self) -> None:
        self._state = State()

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        return StepResult(observation=Observation())

    def step(self, action: InfoAction) -> StepResult[Any]:
        self._state.step_count += 1
        info = {"thing": object()} if action.n == 1 else {}
        return StepResult(observation=Observation(), info=info)

    @property
    def state(self) -> State:
        return self._state


def test_unencodable_info_is_an_error_not_silence(start_server: Any) -> None:
    server = start_server(UnencodableInfoEnv)
    with corral_ws(server) as ws:
        hello(ws)
        ask(ws, {"type": "reset", "id": 0})
        assert_error(ask(ws, {"type": "step", "id": 1, "data": {"n": 1}}), "EXECUTION_ERROR", 1)
        assert ask(ws, {"type": "step", "id": 2, "data": {"n": 2}})["type"] == "observation"


# -- many sessions on one connection -------------------------------------------------------------


@pytest.mark.parametrize("env_cls", [CountingEnv, InlineCountingEnv], ids=["pool", "inline"])
def test_open_reset_step_close_many(start_server: Any, env_cls: type[CountingEnv]) -> None:
    CountingEnv.reset_counters()
    server = start_server(env_cls)
    with corral_ws(server, {"X-Corral-Open": "0"}) as ws:
        hello(ws)
        opened = ask(ws, {"type": "open", "id": 1, "data": {"count": 3}})
        assert opened["type"] == "opened"
        assert opened["id"] == 1
        entries = opened["data"]["sessions"]
        ids = [e["session"] for e in entries]
        assert len(set(ids)) == 3
        assert all(e["resume_token"] for e in entries)
        assert len(server.manager.sessions) == 3

        items = [{"session": s, "data": {"episode_id": f"e{i}"}} for i, s in enumerate(ids)]
        reply = ask(ws, {"type": "reset_many", "id": 2, "data": {"items": items}})
        assert reply["type"] == "batch"
        assert reply["id"] == 2
        results = reply["data"]["results"]
        assert [r["session"] for r in results] == ids
        assert all(r["type"] == "observation" and "id" not in r for r in results)

        items = [{"session": s, "id": f"i{k}", "data": {"n": k + 1}} for k, s in enumerate(ids)]
        reply = ask(ws, {"type": "step_many", "id": 3, "data": {"items": items}})
        results = reply["data"]["results"]
        assert [r["id"] for r in results] == ["i0", "i1", "i2"]
        assert [r["data"]["observation"]["total"] for r in results] == [1, 2, 3]
        assert [r["data"]["info"] for r in results] == [{"n": 1}, {"n": 2}, {"n": 3}]
        # the same items again (a retry after a lost reply): answered from the record, not stepped twice
        again = ask(ws, {"type": "step_many", "id": 33, "data": {"items": items}})["data"]["results"]
        assert again == results

        state = ask(ws, {"type": "state", "id": 4, "session": ids[1]})
        assert state["session"] == ids[1]
        assert state["data"] == {"episode_id": "e1", "step_count": 1}

        closed = ask(ws, {"type": "close_many", "id": 5, "data": {"sessions": ids[:2]}})
        assert closed == {"type": "closed", "id": 5, "data": {"sessions": ids[:2]}}
        assert len(server.manager.sessions) == 1
        assert CountingEnv.closed == 2

        items = [{"session": s, "data": {"n": 1}} for s in ids]
        reply = ask(ws, {"type": "step_many", "id": 6, "data": {"items": items}})
        codes = [r["type"] if r["type"] != "error" else r["data"]["code"] for r in reply["data"]["results"]]
        assert codes == ["SESSION_NOT_FOUND", "SESSION_NOT_FOUND", "observation"]

        closed = ask(ws, {"type": "close", "id": 7, "session": ids[2]})
        assert closed == {"type": "closed", "id": 7, "session": ids[2]}
    assert server.manager.active == 0


def test_streamed_batch(start_server: Any) -> None:
    server = start_server(SlowEnv)
    with corral_ws(server, {"X-Corral-Open": "0"}) as ws:
        hello(ws)
        ids = [s["session"] for s in ask(ws, {"type": "open", "id": 1, "data": {"count": 3}})["data"]["sessions"]]
        reset = ask(ws, {"type": "reset_many", "id": 2, "data": {"items": [{"session": s} for s in ids]}})
        assert all(r["type"] == "observation" for r in reset["data"]["results"])
        delays = [0.2, 0.0, 0.1]
        items = [{"session": s, "data": {"delay": d}} for s, d in zip(ids, delays, strict=True)]
        send(ws, {"type": "step_many", "id": "b", "data": {"items": items, "stream": True}})
        frames = [recv(ws) for _ in range(4)]
    *items_frames, end = frames
    assert end == {"type": "batch_end", "id": "b", "data": {"count": 3}}
    assert all(f["type"] == "observation" and f["id"] == "b" for f in items_frames)
    # each result arrives as it completes: fastest first
    assert [f["session"] for f in items_frames] == [ids[1], ids[2], ids[0]]
    assert [f["data"]["observation"]["delay"] for f in items_frames] == [0.0, 0.1, 0.2]


def test_open_respects_capacity(start_server: Any) -> None:
    server = start_server(capacity=3)
    with corral_ws(server) as ws:
        hello(ws)  # holds one slot
        data = assert_error(ask(ws, {"type": "open", "id": 1, "data": {"count": 3}}), "CAPACITY_REACHED", 1)
        assert data["max_sessions"] == 3
        assert ask(ws, {"type": "open", "id": 2, "data": {"count": 2}})["type"] == "opened"
        assert server.manager.active == 3
        assert_usable_ping(ws)


def assert_usable_ping(ws: ClientConnection) -> None:
    assert ask(ws, {"type": "ping", "id": "p"}) == {"type": "pong", "id": "p"}


# -- deadlines -----------------------------------------------------------------------------------


def test_step_deadline_closes_only_that_session(start_server: Any) -> None:
    server = start_server(SlowEnv)
    with corral_ws(server) as ws:
        primary = hello(ws)["session"]
        other = ask(ws, {"type": "open", "id": "o", "data": {}})["data"]["sessions"][0]["session"]
        ask(ws, {"type": "reset", "id": 1})
        ask(ws, {"type": "reset", "id": 2, "session": other})
        reply = ask(ws, {"type": "step", "id": 3, "deadline_ms": 50, "data": {"delay": 5}})
        data = assert_error(reply, "DEADLINE_EXCEEDED", 3)
        assert data["session"] == primary
        assert data["deadline_s"] == pytest.approx(0.05)
        assert primary not in server.manager.sessions
        later = ask(ws, {"type": "step", "id": 4, "data": {"delay": 0}})
        assert later["type"] == "error"
        assert later["id"] == 4
        assert later["data"]["code"] in ("SESSION_ERROR", "SESSION_NOT_FOUND")
        fine = ask(ws, {"type": "step", "id": 5, "session": other, "deadline_ms": 5000, "data": {"delay": 0.01}})
        assert fine["type"] == "observation"
        assert fine["session"] == other


def test_server_deadline_caps_the_client_deadline(start_server: Any) -> None:
    server = start_server(SlowEnv, step_timeout_s=0.1)
    with corral_ws(server) as ws:
        hello(ws)
        ask(ws, {"type": "reset", "id": 1})
        reply = ask(ws, {"type": "step", "id": 2, "deadline_ms": 60_000, "data": {"delay": 5}})
        assert assert_error(reply, "DEADLINE_EXCEEDED", 2)["deadline_s"] == pytest.approx(0.1)


def test_guess_over_corral_keeps_state_fields(start_server: Any) -> None:
    server = start_server(GuessEnvironment)
    with corral_ws(server) as ws:
        hello(ws)
        ask(ws, {"type": "reset", "id": 1, "data": {"high": 10, "max_attempts": 3}})
        state = ask(ws, {"type": "state", "id": 2})["data"]
    assert state == {"episode_id": state["episode_id"], "step_count": 0, "low": 1, "high": 10,
                     "attempts_left": 3, "found": False}


def test_close_while_a_step_runs_answers_both(start_server: Any) -> None:
    server = start_server(SlowEnv)
    with corral_ws(server) as ws:
        hello(ws)
        ask(ws, {"type": "reset", "id": 0})
        send(ws, {"type": "step", "id": 1, "data": {"delay": 0.2}})
        send(ws, {"type": "close", "id": 2})
        by_id = collect(ws, 2)
        assert by_id[2]["type"] == "closed"
        assert by_id[1]["type"] in ("observation", "error")
        assert ask(ws, {"type": "ping", "id": 3})["type"] == "pong"
    assert server.manager.active == 0


@pytest.mark.parametrize("env_cls", [CountingEnv, InlineCountingEnv], ids=["pool", "inline"])
@pytest.mark.parametrize("subprotocol", [SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK], ids=["json", "msgpack"])
def test_retried_step_gets_the_frame_that_was_sent_here_and_after_a_resume(
    start_server: Any, env_cls: type[CountingEnv], subprotocol: str
) -> None:
    # A step's reply is kept as the frame that went out; a retry on this connection, and one on a resumed
    # connection, get that frame back, and the step is applied once.
    server = start_server(env_cls)
    binary = subprotocol == SUBPROTOCOL_MSGPACK

    def receive(ws: ClientConnection) -> tuple[str | bytes, dict[str, Any]]:
        raw = ws.recv(5)
        frame: dict[str, Any] = msgpack.unpackb(raw) if binary else orjson.loads(raw)
        return raw, frame

    def call(ws: ClientConnection, frame: dict[str, Any]) -> tuple[str | bytes, dict[str, Any]]:
        ws.send(msgpack.packb(frame) if binary else orjson.dumps(frame).decode())
        return receive(ws)

    first = server.ws([subprotocol])
    with first:
        greeting = receive(first)[1]["data"]
        session, token = greeting["session"], greeting["resume_token"]
        call(first, {"type": "reset", "id": 1})
        raw, reply = call(first, {"type": "step", "id": 2, "data": {"n": 5}})
        assert reply["data"]["observation"]["total"] == 5
        assert call(first, {"type": "step", "id": 2, "data": {"n": 5}})[0] == raw
        record = server.manager.sessions[session].replay[2]
        assert record == ("msgpack" if binary else "json", raw if isinstance(raw, bytes) else raw.encode())
    resumed = server.ws([subprotocol], {"X-Corral-Resume-Session": session, "X-Corral-Resume-Token": token})
    with resumed:
        assert receive(resumed)[1]["data"]["resumed"]
        assert call(resumed, {"type": "step", "id": 2, "data": {"n": 5}})[1] == reply
        assert call(resumed, {"type": "step", "id": 3, "data": {"n": 1}})[1]["data"]["observation"]["total"] == 6



def test_a_large_reply_is_kept_for_replay_without_a_second_copy(start_server: Any) -> None:
    server = start_server(BlobEnv)
    with server.ws([SUBPROTOCOL_MSGPACK]) as ws:
        session = msgpack.unpackb(ws.recv(5))["data"]["session"]

        def call(frame: dict[str, Any]) -> bytes:
            ws.send(msgpack.packb(frame))
            raw = ws.recv(5)
            assert isinstance(raw, bytes)
            return raw

        call({"type": "reset", "id": 1})
        first = call({"type": "step", "id": 2, "data": {"size": 1 << 17}})
        record = server.manager.sessions[session].replay[2]
        assert isinstance(record, dict)  # it holds the observation's own bytes, not the frame's
        assert call({"type": "step", "id": 2, "data": {"size": 1 << 17}}) == first
        assert msgpack.unpackb(call({"type": "state", "id": 3}))["data"]["step_count"] == 1


def test_retry_of_a_request_whose_session_was_closed_meanwhile(start_server: Any) -> None:
    server = start_server(SlowEnv)
    with corral_ws(server) as ws:
        sid = hello(ws)["session"]
        ask(ws, {"type": "reset", "id": 0})
        send(ws, {"type": "step", "id": 1, "data": {"delay": 0.2}})
        server.call(server.manager.close(server.manager.sessions[sid]))
        assert recv(ws)["id"] == 1  # the running step is still answered
        retry = ask(ws, {"type": "step", "id": 1, "data": {"delay": 0.2}})
        assert_error(retry, "SESSION_ERROR", 1)
