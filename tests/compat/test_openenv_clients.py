"""openenv-core 0.3.0's own clients against ``corral serve``, compared with openenv's own server.

Each scenario of ``peer/client_driver.py`` runs against both servers; where the outputs may differ
(message texts, ids, environment metadata, places where Corral is deliberately better) the test says
so and asserts Corral's behaviour instead.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from .conftest import PEER_CAPACITY, CorralServers, DriverResults

pytestmark = pytest.mark.peer


def by_name(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in entries}


def error_code(client_error: str | None) -> str | None:
    """The code in openenv's ``RuntimeError("Server error: M (code: C)")`` text."""
    match = re.fullmatch(r"Server error: .+ \(code: ([A-Z_]+)\)", client_error or "", re.DOTALL)
    return match.group(1) if match else None


def locs(errors: list[dict[str, Any]]) -> list[tuple[tuple[Any, ...], str]]:
    return sorted((tuple(e["loc"]), e["type"]) for e in errors)


# -- WebSocket: GenericEnvClient, async and .sync() -------------------------------------------------


@pytest.mark.parametrize("flavour", ["async", "sync"])
def test_generic_client_gets_the_same_results(driver: DriverResults, flavour: str) -> None:
    peer, corral = driver["peer.basic"][flavour], driver["corral.basic"][flavour]
    assert corral["reset"] == peer["reset"] == {
        "observation": {"echoed_message": "Echo environment ready!", "message_length": 0},
        "reward": 0.0,
        "done": False,
    }
    assert corral["steps"] == peer["steps"]  # rewards included, to the last float bit
    assert [s["observation"]["echoed_message"] for s in corral["steps"]] == ["hello", "", "corral"]
    assert corral["state"] == peer["state"] == {"episode_id": "ep-basic", "step_count": 3}
    # A bad action is a RuntimeError carrying the same code; the session carries on.
    assert error_code(corral["client_error"]) == error_code(peer["client_error"]) == "VALIDATION_ERROR"
    assert corral["state_after_error"] == peer["state_after_error"] == {"episode_id": "ep-basic", "step_count": 3}


# -- WebSocket: malformed frames, sent raw --------------------------------------------------------

SAME_ERROR = [
    "invalid_json",
    "unknown_type",
    "missing_type",
    "step_wrong_field_type",
    "step_missing_field",
    "step_extra_field",
    "step_wrapped_action",
    "step_without_data",
    "reset_data_not_object",
]
FATAL_ON_OPENENV = ["json_array", "json_string", "json_null", "binary_frame"]


@pytest.fixture(scope="module")
def probes(driver: DriverResults) -> tuple[dict[str, Any], dict[str, Any]]:
    return by_name(driver["peer.errors"]["probes"]), by_name(driver["corral.errors"]["probes"])


@pytest.mark.parametrize("name", SAME_ERROR)
def test_malformed_frame_gets_the_same_error_code(probes: tuple[dict[str, Any], dict[str, Any]], name: str) -> None:
    peer, corral = probes[0][name], probes[1][name]
    assert peer["reply"]["type"] == corral["reply"]["type"] == "error"
    assert corral["reply"]["data"]["code"] == peer["reply"]["data"]["code"]
    assert corral["reply"]["data"]["message"]
    assert "id" not in corral["reply"]
    assert peer["usable_after"]
    assert corral["usable_after"]


@pytest.mark.parametrize("name", ["step_wrong_field_type", "step_missing_field", "step_extra_field",
                                  "step_wrapped_action"])
def test_action_validation_errors_point_at_the_same_fields(
    probes: tuple[dict[str, Any], dict[str, Any]], name: str
) -> None:
    peer, corral = probes[0][name]["reply"]["data"], probes[1][name]["reply"]["data"]
    assert locs(corral["errors"]) == locs(peer["errors"])


@pytest.mark.parametrize("name", FATAL_ON_OPENENV)
def test_frame_that_kills_an_openenv_session_leaves_corral_usable(
    probes: tuple[dict[str, Any], dict[str, Any]], name: str
) -> None:
    peer, corral = probes[0][name], probes[1][name]
    assert peer["reply"]["data"]["code"] == "SESSION_ERROR"
    assert not peer["usable_after"]
    assert peer["close_code"] == 1000
    assert corral["reply"]["type"] == "error"
    assert corral["reply"]["data"]["code"] == "INVALID_JSON"
    assert corral["usable_after"]
    assert corral["close_code"] is None


def test_reset_without_data_and_close_match(probes: tuple[dict[str, Any], dict[str, Any]]) -> None:
    peer, corral = probes
    assert corral["reset_without_data"] == peer["reset_without_data"]
    assert corral["close"] == peer["close"]  # no reply frame, then close 1000
    assert corral["close"]["reply"] is None
    assert corral["close"]["close_code"] == 1000


def test_where_corral_differs_on_purpose(probes: tuple[dict[str, Any], dict[str, Any]]) -> None:
    peer, corral = probes
    # A compat frame with an extra "id" key: openenv refuses it, Corral ignores the key and answers.
    assert peer["frame_with_id"]["reply"]["data"]["code"] == "VALIDATION_ERROR"
    assert corral["frame_with_id"]["reply"]["type"] == "state"
    # A negative seed: openenv's WebSocket reset lets it through (its HTTP reset refuses it); Corral
    # refuses it on both, and the session stays usable.
    assert peer["reset_negative_seed"]["reply"]["type"] == "observation"
    assert corral["reset_negative_seed"]["reply"]["data"]["code"] == "VALIDATION_ERROR"
    assert corral["reset_negative_seed"]["usable_after"]


def test_no_probe_was_left_unanswered(probes: tuple[dict[str, Any], dict[str, Any]]) -> None:
    for probe in probes[1].values():
        assert not probe["reply_timeout"], probe
        assert probe["reply"] is not None or probe["name"] == "close", probe


# -- HTTP without X-Session-Id: openenv's stateless routes ---------------------------------------

SAME_BODY = ["reset_no_body", "reset_empty", "reset_seed", "reset_extra_kwarg", "step", "step_options", "health"]


@pytest.fixture(scope="module")
def http(driver: DriverResults) -> tuple[dict[str, Any], dict[str, Any]]:
    return by_name(driver["peer.http"]["requests"]), by_name(driver["corral.http"]["requests"])


def test_http_status_codes_match(http: tuple[dict[str, Any], dict[str, Any]]) -> None:
    peer, corral = http
    assert set(corral) == set(peer) - {"step_env_raises"}
    assert {n: r["status"] for n, r in corral.items()} == {n: peer[n]["status"] for n in corral}


@pytest.mark.parametrize("name", SAME_BODY)
def test_http_bodies_match(http: tuple[dict[str, Any], dict[str, Any]], name: str) -> None:
    assert http[1][name]["body"] == http[0][name]["body"]


def test_http_validation_errors(http: tuple[dict[str, Any], dict[str, Any]]) -> None:
    peer, corral = http
    for name, entry in corral.items():
        if entry["status"] == 422:
            detail = entry["body"]["detail"]
            assert isinstance(detail, list), name
            assert detail, name
            assert all({"loc", "msg", "type"} <= set(e) for e in detail), name
    for name in ("step_wrong_field_type", "step_extra_field"):
        assert locs(corral[name]["body"]["detail"]) == locs(peer[name]["body"]["detail"])


def test_http_read_only_routes(http: tuple[dict[str, Any], dict[str, Any]]) -> None:
    peer, corral = http
    state = corral["state"]["body"]
    assert set(state) == set(peer["state"]["body"])
    assert state["step_count"] == 0
    assert set(corral["metadata"]["body"]) == set(peer["metadata"]["body"])
    schema, peer_schema = corral["schema"]["body"], peer["schema"]["body"]
    assert set(schema) == set(peer_schema) == {"action", "observation", "state"}
    assert schema["action"]["required"] == peer_schema["action"]["required"] == ["message"]
    assert set(schema["action"]["properties"]) == set(peer_schema["action"]["properties"])
    api, peer_api = corral["openapi"]["body"], peer["openapi"]["body"]
    assert api["openapi"] == peer_api["openapi"]
    assert api["version"].startswith("1.")
    assert api["paths"] == peer_api["paths"]


def test_http_environment_error_is_a_500(corral_servers: CorralServers, http: tuple[dict[str, Any], Any]) -> None:
    assert http[0]["step_env_raises"]["status"] == 500  # openenv: text/plain "Internal Server Error"
    reply = httpx.post(f"{corral_servers.guess.url}/reset", json={"high": 0}, timeout=5)
    assert reply.status_code == 500
    assert reply.json()["code"] == "EXECUTION_ERROR"
    assert "must be >= 1" in reply.json()["detail"]


def test_http_is_stateful_only_with_the_session_header(corral_servers: CorralServers) -> None:
    with httpx.Client(base_url=corral_servers.echo.url, timeout=5) as client:
        reset = client.post("/reset", json={"episode_id": "ep-http"})
        sid = reset.headers["X-Session-Id"]
        session = {"X-Session-Id": sid}
        for message in ("a", "bb"):
            assert client.post("/step", json={"action": {"message": message}}, headers=session).status_code == 200
        assert client.get("/state", headers=session).json() == {"episode_id": "ep-http", "step_count": 2}
        # Without the header nothing continues that session: each request sees a fresh instance.
        assert client.get("/state").json()["step_count"] == 0
        step = client.post("/step", json={"action": {"message": "hi"}})
        assert step.status_code == 200
        assert "X-Session-Id" not in step.headers
        assert client.get("/state", headers=session).json()["step_count"] == 2


# -- capacity ---------------------------------------------------------------------------------------


def test_capacity_is_refused_before_the_upgrade(driver: DriverResults) -> None:
    peer, corral = driver["peer.capacity"], driver["corral.capacity"]
    assert peer["opened"] == corral["opened"] == PEER_CAPACITY
    # openenv accepts the extra connection, then sends CAPACITY_REACHED and closes it.
    assert peer["extra"]["reply"]["data"]["code"] == "CAPACITY_REACHED"
    assert peer["extra"]["close_code"] == 1000
    # Corral refuses the upgrade itself: HTTP 503 with the same code and counts in a JSON body.
    refused = corral["extra"]["refused"]
    assert refused["status"] == 503
    assert refused["body"]["code"] == "CAPACITY_REACHED"
    assert refused["body"]["max_sessions"] == refused["body"]["active_sessions"] == PEER_CAPACITY
    assert corral["extra"]["reply"] is None
    assert not corral["extra"]["usable_after"]
    # openenv's client sees a ConnectionError naming the 503 (not websockets' raw ConnectionClosedOK).
    assert corral["client_error"].startswith("builtins.ConnectionError: ")
    assert "HTTP 503" in corral["client_error"]
    # Corral's HTTP reset opens a real session, so it is refused too (openenv's throwaway one is not).
    assert peer["http_reset_status"] == 200
    assert corral["http_reset_status"] == 503
    assert peer["slot_freed"]
    assert corral["slot_freed"]


# -- MCP -------------------------------------------------------------------------------------------


def rpc_error(body: dict[str, Any]) -> int | None:
    return body["error"]["code"] if "error" in body else None


def test_mcp_over_http(driver: DriverResults) -> None:
    peer, corral = by_name(driver["peer.mcp"]["http"]), by_name(driver["corral.mcp"]["http"])
    assert set(corral) == set(peer)
    assert all(entry["status"] == 200 for entry in corral.values())
    for name in ("unknown_method", "invalid_request", "parse_error", "session_close_unknown",
                 "session_close_missing", "tools_call"):
        assert rpc_error(corral[name]["body"]) is not None, name
        assert corral[name]["body"]["jsonrpc"] == "2.0"
    for name in ("unknown_method", "invalid_request", "parse_error", "session_close_unknown",
                 "session_close_missing"):
        assert rpc_error(corral[name]["body"]) == rpc_error(peer[name]["body"]), name
    assert corral["parse_error"]["body"]["id"] is None
    assert corral["invalid_request"]["body"]["id"] is None
    # An array of params: openenv says -32600 (its request model refuses it); JSON-RPC allows
    # by-position params, so Corral says -32602 (invalid params for the method).
    assert rpc_error(corral["params_not_object"]["body"]) == -32602
    assert isinstance(corral["session_create"]["body"]["result"]["session_id"], str)
    assert corral["session_close"]["body"]["result"]["closed"] is True
    # An environment without tools: openenv answers -32603 "does not support MCP", Corral an empty list.
    assert rpc_error(peer["tools_list"]["body"]) == -32603
    assert corral["tools_list"]["body"]["result"] == {"tools": []}


def test_mcp_over_websocket(driver: DriverResults) -> None:
    corral = by_name(driver["corral.mcp"]["ws_frames"])
    for probe in corral.values():
        assert probe["reply"]["type"] == "mcp", probe
        assert probe["usable_after"], probe
    assert rpc_error(corral["mcp_bad_request"]["reply"]["data"]) == -32600
    # openenv also has a bare JSON-RPC WebSocket route /mcp; Corral carries MCP on /ws only.
    assert driver["corral.mcp"]["ws_mcp_route"]["refused"]["status"] == 404


def test_tools_are_bound_to_the_websocket_session(driver: DriverResults) -> None:
    ws = by_name(driver["corral.tools"]["ws_frames"])
    step = ws["step"]["reply"]["data"]["observation"]
    assert ws["step"]["reply"]["type"] == "observation"
    assert step["hint"] in ("higher", "lower")
    listed = ws["tools_list"]["reply"]["data"]["result"]["tools"]
    assert [t["name"] for t in listed] == ["range_size"]
    assert listed[0]["input_schema"]["type"] == "object"
    # The tool sees this connection's episode, after its step.
    call = ws["tools_call"]["reply"]["data"]["result"]
    assert call["data"] == step["high"] - step["low"] + 1
    assert call["isError"] is False
    assert rpc_error(ws["tools_call_reserved"]["reply"]["data"]) is not None  # reset is never a tool
    assert rpc_error(ws["tools_call_unknown"]["reply"]["data"]) is not None
    assert ws["state"]["reply"]["data"]["step_count"] == 1  # tool calls are not steps


def test_openenv_clients_against_an_environment_with_tools(driver: DriverResults) -> None:
    out = driver["corral.tools"]
    client = out["client"]
    # The environment raising on reset reaches openenv's client as EXECUTION_ERROR; the session carries on.
    assert error_code(client["bad_reset_error"]) == "EXECUTION_ERROR"
    assert "must be >= 1" in client["bad_reset_error"]
    assert client["reset"]["observation"]["hint"] == "start"
    assert client["step"]["reward"] == pytest.approx(-0.05)
    assert client["step"]["done"] is False
    assert client["state"]["step_count"] == 1
    # MCPToolClient in production mode: POST /mcp with openenv/session/create and session_id params.
    production = out["production"]
    assert [t["name"] for t in production["tools"]] == ["range_size"]
    assert production["tools"][0]["description"] == "How many numbers are still possible."
    assert production["call"] == 100  # a fresh session: the whole default range 1..100
    assert production["unknown_tool_error"].startswith("Tool 'nope' failed: ")
