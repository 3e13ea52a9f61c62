"""Bearer-token auth: every route but ``/health`` requires the token; WebSockets are refused before the upgrade."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from websockets.exceptions import InvalidStatus

from corral import ServerConfig
from corral.client import AsyncEnvClient, EnvClient
from corral.envs.guess import GuessEnvironment, GuessObservation
from corral.errors import Unauthorized
from corral.protocol import SUBPROTOCOL_JSON

from ..support import RunningServer, ask, recv

TOKEN = "s3cret-t0ken"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    running = RunningServer(GuessEnvironment, ServerConfig(token=TOKEN)).start()
    yield running
    running.stop()


@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}])
@pytest.mark.parametrize("subprotocols", [None, [SUBPROTOCOL_JSON]])
def test_websocket_refused_before_upgrade(server: RunningServer, headers: dict[str, str] | None,
                                          subprotocols: list[str] | None) -> None:
    before = server.manager.active
    with pytest.raises(InvalidStatus) as info:
        server.ws(subprotocols, headers)
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert orjson.loads(response.body or b"")["code"] == "UNAUTHORIZED"
    assert server.manager.active == before


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/reset"), ("POST", "/step"), ("GET", "/state"), ("GET", "/metadata"), ("GET", "/schema"),
     ("GET", "/openapi.json"), ("GET", "/metrics"), ("POST", "/mcp"), ("GET", "/nowhere")],
)
def test_http_routes_need_the_token(server: RunningServer, method: str, path: str) -> None:
    before = server.manager.active
    with server.http() as http:
        response = http.request(method, path, json={"action": {"guess": 1}})
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["code"] == "UNAUTHORIZED"
        wrong = http.request(method, path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    assert server.manager.active == before


def test_health_is_open(server: RunningServer) -> None:
    with server.http() as http:
        response = http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


def test_http_with_the_token(server: RunningServer) -> None:
    with server.http(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        reset = http.post("/reset", json={"seed": 1})
        assert reset.status_code == 200
        sid = reset.headers["X-Session-Id"]
        step = http.post("/step", json={"action": {"guess": 50}}, headers={"X-Session-Id": sid})
        assert step.status_code == 200
        assert http.get("/metadata").json()["name"] == "guess"
        tools = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).json()
    assert TOKEN not in orjson.dumps(tools).decode()


def test_raw_websocket_with_the_token(server: RunningServer) -> None:
    with server.ws([SUBPROTOCOL_JSON], {"Authorization": f"Bearer {TOKEN}"}) as ws:
        hello = recv(ws)
        assert TOKEN not in orjson.dumps(hello).decode()
        assert ask(ws, {"type": "reset", "id": 1})["type"] == "observation"
        listing = ask(ws, {"type": "mcp", "id": 2, "data": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}})
        assert TOKEN not in orjson.dumps(listing).decode()


def test_sync_client_with_the_token(server: RunningServer) -> None:
    with EnvClient(server.url, token=TOKEN, observation_type=GuessObservation) as env:
        assert env.reset(seed=3).observation.hint == "start"
        assert env.step({"guess": 50}).observation.hint in ("higher", "lower", "correct")
        assert env.call_tool("range_size") >= 1


def test_sync_client_without_the_token(server: RunningServer) -> None:
    with pytest.raises(Unauthorized) as info:
        EnvClient(server.url).connect()
    assert "token" in str(info.value)
    with pytest.raises(Unauthorized):
        EnvClient(server.url, token="wrong").reset()


async def test_async_client_with_the_token(server: RunningServer) -> None:
    async with AsyncEnvClient(server.url, token=TOKEN, observation_type=GuessObservation) as env:
        assert (await env.reset(seed=3)).observation.hint == "start"
        assert (await env.state()).step_count == 0


async def test_async_client_without_the_token(server: RunningServer) -> None:
    with pytest.raises(Unauthorized):
        await AsyncEnvClient(server.url).connect()
