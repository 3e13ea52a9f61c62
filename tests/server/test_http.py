"""HTTP routes: stateful /reset, /step, /state with X-Session-Id, stateless compat without it, read-only routes."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from corral.envs.echo import EchoEnvironment
from corral.envs.guess import GuessEnvironment
from corral.protocol import SUBPROTOCOL_JSON

from ..support import CountingEnv, RunningServer, SlowEnv, recv, wait_until


@pytest.fixture
def http(echo_server: RunningServer) -> Any:
    with echo_server.http() as client:
        yield client


def sid_of(response: httpx.Response) -> dict[str, str]:
    return {"X-Session-Id": response.headers["X-Session-Id"]}


def assert_422(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail
    for item in detail:
        assert {"type", "loc", "msg"} <= set(item)
    return detail


def test_reset_opens_a_session(http: httpx.Client) -> None:
    response = http.post("/reset", json={"episode_id": "http-1"})
    assert response.status_code == 200
    assert response.json() == {"observation": {"echoed_message": "Echo environment ready!", "message_length": 0},
                               "reward": 0.0, "done": False}
    assert response.headers["X-Session-Id"]
    assert response.headers["content-type"] == "application/json"


def test_reset_without_body(http: httpx.Client) -> None:
    response = http.post("/reset")
    assert response.status_code == 200
    assert response.headers["X-Session-Id"]


def test_step_and_state_continue_the_episode(http: httpx.Client) -> None:
    session = sid_of(http.post("/reset", json={"episode_id": "http-2"}))
    first = http.post("/step", json={"action": {"message": "ab"}}, headers=session)
    assert first.status_code == 200
    assert first.json() == {"observation": {"echoed_message": "ab", "message_length": 2},
                            "reward": pytest.approx(0.2), "done": False}
    assert first.headers["X-Session-Id"] == session["X-Session-Id"]
    http.post("/step", json={"action": {"message": "c"}}, headers=session)
    state = http.get("/state", headers=session)
    assert state.status_code == 200
    assert state.json() == {"episode_id": "http-2", "step_count": 2}


def test_reset_with_session_header_resets_that_session(http: httpx.Client) -> None:
    session = sid_of(http.post("/reset", json={"episode_id": "first"}))
    http.post("/step", json={"action": {"message": "x"}}, headers=session)
    again = http.post("/reset", json={"episode_id": "second"}, headers=session)
    assert again.status_code == 200
    assert again.headers["X-Session-Id"] == session["X-Session-Id"]
    assert http.get("/state", headers=session).json() == {"episode_id": "second", "step_count": 0}


def test_sessions_are_independent(http: httpx.Client) -> None:
    a = sid_of(http.post("/reset", json={}))
    b = sid_of(http.post("/reset", json={}))
    assert a != b
    http.post("/step", json={"action": {"message": "x"}}, headers=a)
    assert http.get("/state", headers=a).json()["step_count"] == 1
    assert http.get("/state", headers=b).json()["step_count"] == 0


def test_without_session_header_is_stateless(start_server: Any) -> None:
    CountingEnv.reset_counters()
    server = start_server(CountingEnv)
    with server.http() as http:
        for _ in range(2):
            response = http.post("/step", json={"action": {"n": 2}})
            assert response.status_code == 200
            assert response.json() == {"observation": {"total": 2}, "reward": 2.0, "done": False}
            assert "X-Session-Id" not in response.headers
        state = http.get("/state")
        assert state.status_code == 200
        assert state.json()["step_count"] == 0
    assert server.manager.active == 0
    assert CountingEnv.closed == CountingEnv.created == 3


def test_step_request_id_is_applied_once(start_server: Any) -> None:
    server = start_server(CountingEnv)
    with server.http() as http:
        session = sid_of(http.post("/reset", json={}))
        body = {"action": {"n": 5}, "request_id": "retry-me"}
        first = http.post("/step", json=body, headers=session)
        again = http.post("/step", json=body, headers=session)
        assert first.json() == again.json() == {"observation": {"total": 5}, "reward": 5.0, "done": False}
        assert http.get("/state", headers=session).json()["step_count"] == 1


def test_unknown_session(http: httpx.Client) -> None:
    for response in (http.post("/step", json={"action": {"message": "x"}}, headers={"X-Session-Id": "nope"}),
                     http.get("/state", headers={"X-Session-Id": "nope"})):
        assert response.status_code == 404
        body = response.json()
        assert body["code"] == "SESSION_ERROR"
        assert "nope" in body["detail"]


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[]", b'"x"', b'{"message": "no action wrapper"}', b'{"action": "x"}',
     b'{"action": {"message": 5}}', b'{"action": {"message": "x", "extra": 1}}',
     b'{"action": {"message": "x"}, "timeout_s": -1}', b'{"action": {"message": "x"}, "timeout_s": "soon"}'],
)
def test_step_validation_errors(http: httpx.Client, content: bytes) -> None:
    session = sid_of(http.post("/reset", json={}))
    detail = assert_422(http.post("/step", content=content, headers={**session, "content-type": "application/json"}))
    assert detail[0]["loc"]
    assert http.get("/state", headers=session).json()["step_count"] == 0


def test_step_validation_error_names_the_field(http: httpx.Client) -> None:
    detail = assert_422(http.post("/step", json={"action": {"message": 5}}))
    assert detail[0]["loc"] == ["message"]


@pytest.mark.parametrize(
    "body", [[1], "x", {"seed": -1}, {"seed": "1"}, {"seed": True}, {"episode_id": 3}, {"episode_id": "e" * 256}]
)
def test_reset_validation_errors(start_server: Any, body: Any) -> None:
    server = start_server(EchoEnvironment)
    with server.http() as http:
        assert_422(http.post("/reset", json=body))
    assert server.manager.active == 0


def test_reset_needed_over_http(start_server: Any) -> None:
    server = start_server(GuessEnvironment)
    with server.http() as http:
        session = sid_of(http.post("/reset", json={"seed": 0, "high": 5, "max_attempts": 1}))
        done = http.post("/step", json={"action": {"guess": 0}}, headers=session).json()
        assert done["done"] is True
        again = http.post("/step", json={"action": {"guess": 1}}, headers=session)
        assert again.status_code == 409
        assert again.json()["code"] == "RESET_NEEDED"


def test_environment_error_over_http(start_server: Any) -> None:
    server = start_server(SlowEnv)
    with server.http() as http:
        session = sid_of(http.post("/reset", json={}))
        response = http.post("/step", json={"action": {"fail": True}}, headers=session)
        assert response.status_code == 500
        assert response.json()["code"] == "EXECUTION_ERROR"
        assert "on purpose" in response.json()["detail"]
        assert http.post("/step", json={"action": {}}, headers=session).status_code == 200


def test_step_timeout_over_http(start_server: Any) -> None:
    server = start_server(SlowEnv)
    with server.http() as http:
        session = sid_of(http.post("/reset", json={}))
        response = http.post("/step", json={"action": {"delay": 5}, "timeout_s": 0.05}, headers=session)
        assert response.status_code == 504
        assert response.json()["code"] == "DEADLINE_EXCEEDED"
        assert http.get("/state", headers=session).status_code == 404
    assert server.manager.active == 0


def test_http_session_expires_after_the_lease(start_server: Any) -> None:
    CountingEnv.reset_counters()
    server = start_server(CountingEnv, lease_s=0.3, reap_interval_s=0.05)
    with server.http() as http:
        session = sid_of(http.post("/reset", json={}))
        assert http.post("/step", json={"action": {"n": 1}}, headers=session).status_code == 200
        wait_until(lambda: not server.manager.sessions)
        wait_until(lambda: CountingEnv.closed == 1)  # close() runs just after the slot is freed
        assert http.get("/state", headers=session).status_code == 404


def test_http_requests_renew_the_lease(start_server: Any) -> None:
    server = start_server(CountingEnv, lease_s=0.4, reap_interval_s=0.05)
    with server.http() as http:
        session = sid_of(http.post("/reset", json={}))
        for _ in range(6):
            time.sleep(0.1)  # six requests span more than one lease
            assert http.post("/step", json={"action": {"n": 1}}, headers=session).status_code == 200
        assert http.get("/state", headers=session).json()["step_count"] == 6


def test_http_cannot_reach_a_websocket_session_by_its_id(start_server: Any) -> None:
    server = start_server(CountingEnv, lease_s=0.3, reap_interval_s=0.05)
    with server.ws([SUBPROTOCOL_JSON]) as ws, server.http() as http:
        sid = recv(ws)["data"]["session"]
        response = http.get("/state", headers={"X-Session-Id": sid})
        assert response.status_code == 404
        assert response.json()["code"] == "SESSION_ERROR"
        close = {"jsonrpc": "2.0", "id": 1, "method": "openenv/session/close", "params": {"session_id": sid}}
        assert "error" in http.post("/mcp", json=close).json()
        session = server.manager.sessions[sid]
        assert session.connection is not None
        assert session.detached_at is None
        ws.send('{"type": "reset", "id": 1}')
        assert recv(ws)["type"] == "observation"


def test_health(http: httpx.Client) -> None:
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


def test_metadata(http: httpx.Client) -> None:
    body = http.get("/metadata").json()
    assert set(body) == {"name", "description", "readme_content", "version", "author", "documentation_url"}
    assert body["name"] == "echo"
    assert body["version"] == "1.0.0"


def test_schema(guess_server: RunningServer) -> None:
    with guess_server.http() as http:
        body = http.get("/schema").json()
    assert set(body) == {"action", "observation", "state"}
    assert "guess" in body["action"]["properties"]
    assert {"hint", "low", "high", "attempts_left"} <= set(body["observation"]["properties"])
    assert {"episode_id", "step_count", "found"} <= set(body["state"]["properties"])


def test_openapi(http: httpx.Client) -> None:
    body = http.get("/openapi.json").json()
    assert body["info"]["version"].startswith("1.")
    assert {"/reset", "/step", "/state"} <= set(body["paths"])
    assert "post" in body["paths"]["/reset"]
    assert "post" in body["paths"]["/step"]
    assert "get" in body["paths"]["/state"]


def test_wrong_method_and_unknown_path(http: httpx.Client) -> None:
    assert http.get("/reset").status_code == 405
    assert http.get("/nowhere").status_code == 404


def test_a_request_longer_than_the_lease_keeps_its_session(start_server: Any) -> None:
    server = start_server(SlowEnv, lease_s=0.2, reap_interval_s=0.02)
    with server.http() as http:
        session = sid_of(http.post("/reset", json={}))
        response = http.post("/step", json={"action": {"delay": 0.4}}, headers=session)
        assert response.status_code == 200
        assert http.get("/state", headers=session).json()["step_count"] == 1
