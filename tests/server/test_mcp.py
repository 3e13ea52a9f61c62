"""MCP over JSON-RPC 2.0: ``POST /mcp`` and ``{"type": "mcp"}`` frames."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from corral import EnvInfo, Environment, State, StepResult, tool
from corral.envs.guess import GuessEnvironment
from corral.protocol import SUBPROTOCOL_JSON

from ..support import CountAction, CountObservation, RunningServer, ask, recv


@pytest.fixture
def http(guess_server: RunningServer) -> Any:
    with guess_server.http() as client:
        yield client


def rpc(method: str, params: dict[str, Any] | None = None, request_id: Any = 1) -> dict[str, Any]:
    request: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        request["params"] = params
    return request


def call(http: httpx.Client, body: Any, **kwargs: Any) -> Any:
    response = http.post("/mcp", json=body, **kwargs)
    assert response.status_code == 200
    return response.json()


def error_code(reply: dict[str, Any]) -> int:
    assert reply["jsonrpc"] == "2.0"
    assert "result" not in reply
    code: int = reply["error"]["code"]
    assert reply["error"]["message"]
    return code


def test_tools_list(http: httpx.Client) -> None:
    reply = call(http, rpc("tools/list", request_id="list"))
    assert reply["id"] == "list"
    assert reply["jsonrpc"] == "2.0"
    (listed,) = reply["result"]["tools"]
    assert listed["name"] == "range_size"
    assert listed["description"] == "How many numbers are still possible."
    assert listed["input_schema"]["type"] == "object"
    assert listed["input_schema"].get("properties", {}) == {}


def test_tools_call_has_data(http: httpx.Client) -> None:
    reply = call(http, rpc("tools/call", {"name": "range_size", "arguments": {}}))
    result = reply["result"]
    assert result["isError"] is False
    assert result["data"] == 100
    assert result["content"] == [{"type": "text", "text": "100"}]


def test_tools_call_bound_to_an_http_session(http: httpx.Client) -> None:
    reset = http.post("/reset", json={"seed": 5, "high": 64})
    session = {"X-Session-Id": reset.headers["X-Session-Id"]}
    assert call(http, rpc("tools/call", {"name": "range_size"}), headers=session)["result"]["data"] == 64
    observation = http.post("/step", json={"action": {"guess": 32}}, headers=session).json()["observation"]
    expected = observation["high"] - observation["low"] + 1
    reply = call(http, rpc("tools/call", {"name": "range_size"}), headers=session)
    assert reply["result"]["data"] == expected


@pytest.mark.parametrize("name", ["reset", "step", "state", "close"])
def test_reserved_names_are_refused(http: httpx.Client, name: str) -> None:
    reply = call(http, rpc("tools/call", {"name": name, "arguments": {}}))
    assert error_code(reply) == -32602
    assert "episode control" in reply["error"]["message"]


def test_reserved_names_cannot_be_declared() -> None:
    with pytest.raises(ValueError, match="reserved"):
        @tool(name="reset")
        def not_allowed(self: Any) -> None: ...

    with pytest.raises(ValueError, match="reserved"):
        @tool
        def step(self: Any) -> None: ...


def test_parse_error(http: httpx.Client) -> None:
    response = http.post("/mcp", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 200
    reply = response.json()
    assert error_code(reply) == -32700
    assert reply["id"] is None


@pytest.mark.parametrize(
    "body",
    [{"jsonrpc": "1.0", "id": 1, "method": "tools/list"}, {"jsonrpc": "2.0", "id": 1}, {"jsonrpc": "2.0", "method": 5},
     5, "tools/list", [], [[]]],
)
def test_invalid_request(http: httpx.Client, body: Any) -> None:
    reply = call(http, body)
    if isinstance(body, list) and body:
        (reply,) = reply
    assert error_code(reply) == -32600


def test_null_request(http: httpx.Client) -> None:
    response = http.post("/mcp", content=b"null", headers={"content-type": "application/json"})
    assert error_code(response.json()) == -32600


def test_invalid_request_keeps_the_id(http: httpx.Client) -> None:
    assert call(http, {"jsonrpc": "1.0", "id": 77, "method": "x"})["id"] == 77


def test_method_not_found(http: httpx.Client) -> None:
    reply = call(http, rpc("resources/list", request_id=9))
    assert error_code(reply) == -32601
    assert reply["id"] == 9


@pytest.mark.parametrize(
    "params",
    [[1, 2], {"name": 5}, {"name": "range_size", "arguments": [1]}, {"name": "range_size", "arguments": {"x": 1}},
     {"name": "no_such_tool"}],
)
def test_invalid_params(http: httpx.Client, params: Any) -> None:
    reply = call(http, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params})
    assert error_code(reply) == -32602
    assert reply["id"] == 2


def test_unknown_session_header(http: httpx.Client) -> None:
    reply = call(http, rpc("tools/list"), headers={"X-Session-Id": "ghost"})
    assert error_code(reply) == -32602


def test_batch_request(http: httpx.Client) -> None:
    replies = call(http, [rpc("tools/list", request_id=1), rpc("nope", request_id=2)])
    assert [r["id"] for r in replies] == [1, 2]
    assert "result" in replies[0]
    assert replies[1]["error"]["code"] == -32601


def test_openenv_session_create_and_close(start_server: Any) -> None:
    server = start_server(GuessEnvironment)
    with server.http() as http:
        created = call(http, rpc("openenv/session/create"))
        sid = created["result"]["session_id"]
        assert sid in server.manager.sessions
        reply = call(http, rpc("tools/call", {"name": "range_size", "session_id": sid}))
        assert reply["result"]["data"] == 100
        assert call(http, rpc("openenv/session/close", {"session_id": sid}))["result"] == {"closed": True}
        assert sid not in server.manager.sessions
        assert error_code(call(http, rpc("openenv/session/close", {"session_id": sid}))) == -32602
    assert server.manager.active == 0


def test_capacity_error_code(start_server: Any) -> None:
    server = start_server(GuessEnvironment, capacity=1)
    with server.http() as http, server.ws():
        assert error_code(call(http, rpc("openenv/session/create"))) == -32000
        assert error_code(call(http, rpc("tools/call", {"name": "range_size"}))) == -32000


class ToolEnv(Environment[CountAction, CountObservation, State]):
    action_type = CountAction
    observation_type = CountObservation
    info = EnvInfo(name="tools")

    def __init__(self) -> None:
        self._state = State()

    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> StepResult[Any]:
        return StepResult(observation=CountObservation(total=0))

    def step(self, action: CountAction) -> StepResult[Any]:
        return StepResult(observation=CountObservation(total=action.n))

    @property
    def state(self) -> State:
        return self._state

    @tool
    def add(self, a: int, b: int = 1) -> dict[str, int]:
        """Add two numbers.

        Longer text that is not part of the description."""
        return {"sum": a + b}

    @tool(name="explode")
    def boom(self) -> None:
        """Always fails."""
        raise RuntimeError("kaboom")


def test_tool_arguments_and_errors(start_server: Any) -> None:
    server = start_server(ToolEnv)
    with server.http() as http:
        listing = {t["name"]: t for t in call(http, rpc("tools/list"))["result"]["tools"]}
        assert set(listing) == {"add", "explode"}
        assert listing["add"]["description"] == "Add two numbers."
        assert listing["add"]["input_schema"]["required"] == ["a"]
        reply = call(http, rpc("tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}}))
        assert reply["result"]["data"] == {"sum": 5}
        assert reply["result"]["content"][0]["text"] == '{"sum":5}'
        bad = call(http, rpc("tools/call", {"name": "add", "arguments": {"a": "two"}}))
        assert error_code(bad) == -32602
        assert bad["error"]["data"]["errors"][0]["loc"] == ["a"]
        failed = call(http, rpc("tools/call", {"name": "explode"}))["result"]
        assert failed["isError"] is True
        assert failed["data"] is None
        assert "kaboom" in failed["content"][0]["text"]
    assert server.manager.active == 0


def test_mcp_over_compat_websocket(guess_server: RunningServer) -> None:
    with guess_server.ws() as ws:
        ask(ws, {"type": "reset", "data": {"seed": 1, "high": 10}})
        reply = ask(ws, {"type": "mcp", "data": rpc("tools/call", {"name": "range_size"}, request_id=5)})
        assert reply == {"type": "mcp", "data": {"jsonrpc": "2.0", "id": 5, "result": {
            "content": [{"type": "text", "text": "10"}], "isError": False, "data": 10}}}
        ask(ws, {"type": "step", "data": {"guess": 5}})
        after = ask(ws, {"type": "mcp", "data": rpc("tools/call", {"name": "range_size"})})
        assert after["data"]["result"]["data"] < 10
        refused = ask(ws, {"type": "mcp", "data": rpc("tools/call", {"name": "step", "arguments": {"guess": 1}})})
        assert refused["data"]["error"]["code"] == -32602
        assert ask(ws, {"type": "mcp", "data": [1]})["data"]["error"]["code"] == -32600
        assert ask(ws, {"type": "state"})["data"]["step_count"] == 1


def test_mcp_over_corral_websocket(guess_server: RunningServer) -> None:
    with guess_server.ws([SUBPROTOCOL_JSON]) as ws:
        recv(ws)
        ask(ws, {"type": "reset", "id": 1, "data": {"high": 20}})
        reply = ask(ws, {"type": "mcp", "id": 2, "data": rpc("tools/call", {"name": "range_size"})})
        assert reply["id"] == 2
        assert reply["data"]["result"]["data"] == 20
        listing = ask(ws, {"type": "mcp", "id": 3, "data": rpc("tools/list")})
        assert listing["data"]["result"]["tools"][0]["input_schema"]["type"] == "object"
