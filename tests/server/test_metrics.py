"""``/metrics``: Prometheus text with session, step and error counters."""

from __future__ import annotations

import re
from typing import Any

import pytest

from corral.protocol import SUBPROTOCOL_JSON
from corral.server.metrics import Metrics

from ..support import CountingEnv, RunningServer, ask, recv


def sample(text: str, name: str, **labels: str) -> float:
    wanted = {"env": "counting", **labels}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if found == wanted:
                return float(match.group(2))
    raise AssertionError(f"no sample {name}{wanted} in:\n{text}")


def metrics(server: RunningServer) -> str:
    with server.http() as http:
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_fresh_server(start_server: Any) -> None:
    text = metrics(start_server(CountingEnv))
    assert sample(text, "corral_sessions_active") == 0
    assert sample(text, "corral_steps_total") == 0
    assert sample(text, "corral_step_latency_seconds_count") == 0
    assert "# TYPE corral_step_latency_seconds histogram" in text
    assert "corral_errors_total{" not in text


def test_counters_after_steps_and_errors(start_server: Any) -> None:
    server = start_server(CountingEnv)
    with server.ws() as ws, server.ws([SUBPROTOCOL_JSON]) as corral:
        recv(corral)
        assert ask(ws, {"type": "step", "data": {"n": 1}})["data"]["code"] == "RESET_NEEDED"
        ask(ws, {"type": "reset"})
        for _ in range(3):
            assert ask(ws, {"type": "step", "data": {"n": 1}})["type"] == "observation"
        assert ask(ws, {"type": "step", "data": {"n": "x"}})["data"]["code"] == "VALIDATION_ERROR"
        assert ask(ws, {"type": "step", "data": {"bogus": 1}})["data"]["code"] == "VALIDATION_ERROR"
        ws.send("not json")
        assert recv(ws)["data"]["code"] == "INVALID_JSON"
        assert ask(ws, {"type": "fly"})["data"]["code"] == "UNKNOWN_TYPE"
        ask(corral, {"type": "reset", "id": 1})
        assert ask(corral, {"type": "step", "id": 2, "data": {"n": 2}})["type"] == "observation"
        assert ask(corral, {"type": "state", "id": 3, "session": "nope"})["data"]["code"] == "SESSION_NOT_FOUND"
        with server.http() as http:
            assert http.post("/step", json={"action": "nope"}).status_code == 422
        text = metrics(server)

    assert sample(text, "corral_steps_total") == 4
    assert sample(text, "corral_step_latency_seconds_count") == 4
    assert sample(text, "corral_step_latency_seconds_bucket", le="+Inf") == 4
    assert sample(text, "corral_step_latency_seconds_sum") >= 0
    assert sample(text, "corral_sessions_active") == 2
    assert sample(text, "corral_sessions_opened_total") == 2
    assert sample(text, "corral_errors_total", code="RESET_NEEDED") == 1
    assert sample(text, "corral_errors_total", code="VALIDATION_ERROR") == 3
    assert sample(text, "corral_errors_total", code="INVALID_JSON") == 1
    assert sample(text, "corral_errors_total", code="UNKNOWN_TYPE") == 1
    assert sample(text, "corral_errors_total", code="SESSION_NOT_FOUND") == 1


def test_capacity_refusals_are_counted(start_server: Any) -> None:
    from websockets.exceptions import InvalidStatus

    server = start_server(CountingEnv, capacity=1)
    with server.ws():
        with pytest.raises(InvalidStatus):
            server.ws()
        text = metrics(server)
    assert sample(text, "corral_errors_total", code="CAPACITY_REACHED") == 1


def test_histogram_buckets_are_cumulative() -> None:
    m = Metrics()
    for seconds in (0.00005, 0.0003, 0.0003, 0.02, 20.0):
        m.observe_step(seconds)
    text = m.render("counting")
    buckets = [float(v) for v in re.findall(r'corral_step_latency_seconds_bucket\{[^}]*\} (\S+)', text)]
    assert buckets == sorted(buckets)
    assert buckets[-1] == 5
    assert sample(text, "corral_step_latency_seconds_bucket", le="0.0001") == 1
    assert sample(text, "corral_step_latency_seconds_bucket", le="0.0005") == 3
    assert sample(text, "corral_step_latency_seconds_bucket", le="10.0") == 4
    assert sample(text, "corral_step_latency_seconds_sum") == sum((0.00005, 0.0003, 0.0003, 0.02, 20.0))
