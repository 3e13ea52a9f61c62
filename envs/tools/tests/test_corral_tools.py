"""tools's tests: the calculator, the library, the tasks, conformance, reproducible seeds, a scripted policy that
answers every question, tools through step actions and over MCP (a real server), reserved names, errors."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from corral import tool
from corral.errors import InvalidAction, UsageError
from corral.runtime import launch
from corral.testing import InProcessClient, check_env, check_package, play_locally
from corral.tools import RESERVED_TOOL_NAMES
from pydantic import ValidationError

from corral_tools import ToolsAction, ToolsEnvironment, ToolsObservation
from corral_tools.calculator import CalculatorError, evaluate
from corral_tools.library import library
from corral_tools.policies import scripted
from corral_tools.tasks import KINDS, make_task, same_answer

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ToolsAction(tool="calculator", arguments={"expression": "6 * 7"})


def play(seed: int | None, **options: object) -> tuple[float, list[dict[str, object]]]:
    return play_locally(ToolsEnvironment(), scripted, seed=seed, **options)


@pytest.mark.parametrize(("expression", "value"), [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("-2 ** 2", -4), ("2 ^ 10", 1024), ("2 ** 3 ** 2", 512),
    ("10 / 4", 2.5), ("10 / 5", 2), ("7 // 2", 3), ("7 % 3", 1), ("3 * -2", -6), ("0.1 + 0.2", 0.3),
    ("sqrt(49) * 3", 21), ("abs(1847 - 1862)", 15), ("round(2.345, 2)", 2.35), ("max(1, 5, 3)", 5),
    ("log(100, 10)", 2), ("1e3 + 1", 1001), ("2 ** -1", 0.5), ("floor(pi)", 3),
])
def test_calculator(expression: str, value: float) -> None:
    assert evaluate(expression) == value


@pytest.mark.parametrize(("expression", "message"), [
    ("1 / 0", "division by zero"), ("2 +", "ends too early"), ("(1", "expected ')'"), ("1 2", "unexpected '2'"),
    ("x + 1", "unknown name 'x'"), ("__import__('os')", "unexpected character"), ("9 ** 9 ** 9", "too large"),
    ("sqrt(-1)", "cannot be computed"), ("round(1, 2, 3)", "takes 1 to 2 arguments"), ("", "empty"),
    ("(" * 60 + "1" + ")" * 60, "nests deeper"), ("1 +" * 300 + "1", "characters long"),
])
def test_calculator_refuses(expression: str, message: str) -> None:
    with pytest.raises(CalculatorError, match=re.escape(message)):
        evaluate(expression)


def test_library_search_ranks_by_keywords() -> None:
    shelf = library()
    assert len(shelf.documents) == 30
    assert len({doc.title for doc in shelf.documents}) == 30
    for doc in shelf.documents:
        assert shelf.search(doc.title, 3)[0]["id"] == doc.id or doc.id == "quillhaven"
        assert all(str(value) in doc.text for value in doc.facts.values())
    hits = shelf.search("who designed the iron bridge over the Oller", 3)
    assert hits[0]["title"] == "Halden Bridge"
    assert hits[0]["facts"]["designer"] == "Petra Vask"
    assert [hit["score"] for hit in hits] == sorted((hit["score"] for hit in hits), reverse=True)
    assert shelf.search("zebra quantum", 3) == []


def test_answers_are_judged_by_value() -> None:
    assert same_answer("12,400", "12400")
    assert same_answer(" Amos threlkeld. ", "Amos Threlkeld")
    assert same_answer("2.50", "2.5")
    assert not same_answer("1848", "1847")
    assert not same_answer("Amos", "Amos Threlkeld")


def test_tasks_come_from_the_seed() -> None:
    assert make_task(random.Random(5)) == make_task(random.Random(5))
    assert {make_task(random.Random(seed)).kind for seed in range(40)} == set(KINDS)
    for kind in KINDS:
        assert make_task(random.Random(1), kind).kind == kind
    with pytest.raises(ValueError, match="unknown task kind"):
        make_task(random.Random(1), "riddle")


def test_conformance() -> None:
    check_env(ToolsEnvironment, sample_action=SAMPLE)
    check_env(ToolsEnvironment, sample_action=ToolsAction(answer="42"), reset_options={"kind": "arithmetic"})


def test_the_package_validates() -> None:
    report = check_package(ROOT, runtime=None)
    assert report.ok, str(report)


def test_same_seed_same_episode() -> None:
    assert play(3) == play(3)
    assert play(3)[1][0]["question"] != play(4)[1][0]["question"]


def test_scripted_policy_answers_every_question() -> None:
    for seed in range(300):
        total, trace = play(seed)
        assert total == 1.0, f"seed {seed}: {trace[0]['question']} answered {trace[-1]['answer']!r}"
        assert trace[-1]["correct"] is True
        assert len(trace) - 1 <= 4


def test_tools_through_step_actions() -> None:
    env = ToolsEnvironment()
    first = env.reset(seed=0, kind="recall", max_steps=6).observation
    assert first.tools == ["calculator", "note_delete", "note_get", "note_list", "note_set", "search"]
    assert first.steps_left == 6
    assert first.history == []
    result = env.step(SAMPLE)
    assert result.observation.result == 42
    assert result.reward == 0.0
    assert not result.done
    keys = env.step(ToolsAction(tool="note_list")).observation.result
    assert len(keys) == 4
    result = env.step(ToolsAction(tool="note_set", arguments={"key": "mine", "value": "x"}))
    assert result.observation.result == {"key": "mine", "value": "x"}
    assert env.state.notes["mine"] == "x"
    result = env.step(ToolsAction(tool="note_get", arguments={"key": "nope"}))
    assert result.observation.error is not None
    assert result.observation.error.startswith("no note under 'nope'; keys: ")
    assert result.observation.result is None
    result = env.step(ToolsAction(tool="calculator", arguments={"expression": "1 / 0"}))
    assert result.observation.error == "division by zero"
    assert [call.tool for call in result.observation.history] == [
        "calculator", "note_list", "note_set", "note_get", "calculator"]
    assert env.state.step_count == 5
    result = env.step(ToolsAction(tool="note_delete", arguments={"key": "mine"}))
    assert result.truncated
    assert not result.terminated
    assert result.reward == 0.0
    assert result.observation.expected is not None
    assert "mine" not in env.state.notes


def test_a_store_task_needs_the_note() -> None:
    env = ToolsEnvironment()
    env.reset(seed=0, kind="store")
    task_answer = make_task(random.Random(0), "store").answer  # reset's own task: the right answer, no note
    result = env.step(ToolsAction(answer=task_answer))
    assert result.terminated
    assert result.reward == 0.0
    assert result.observation.correct is False
    assert result.observation.expected == task_answer


def test_wrong_answer_scores_zero_and_reset_clears_notes() -> None:
    env = ToolsEnvironment()
    env.reset(seed=2, kind="arithmetic")
    env.step(ToolsAction(tool="note_set", arguments={"key": "k", "value": "v"}))
    result = env.step(ToolsAction(answer="not a number"))
    assert result.terminated
    assert result.reward == 0.0
    assert result.observation.answer == "not a number"
    env.reset(seed=2, kind="arithmetic")
    assert env.state.notes == {}


def test_bad_tool_steps_are_refused_and_change_nothing() -> None:
    env = ToolsEnvironment()
    env.reset(seed=1)
    with pytest.raises(InvalidAction, match="unknown tool 'shell'; available: calculator, note_delete"):
        env.step(ToolsAction(tool="shell", arguments={"cmd": "ls"}))
    with pytest.raises(InvalidAction, match="invalid arguments for tool 'calculator'"):
        env.step(ToolsAction(tool="calculator", arguments={"expr": "1"}))
    with pytest.raises(InvalidAction, match="invalid arguments for tool 'search'"):
        env.step(ToolsAction(tool="search", arguments={"query": "x", "k": "many"}))
    assert env.state.step_count == 0


@pytest.mark.parametrize("name", sorted(RESERVED_TOOL_NAMES))
def test_reserved_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="is episode control, not a tool"):
        ToolsAction(tool=name)

    def handler(self: Any) -> None: ...

    with pytest.raises(ValueError, match="is reserved for episode control"):
        tool(name=name)(handler)
    handler.__name__ = name
    with pytest.raises(ValueError, match="is reserved for episode control"):
        tool(handler)


@pytest.mark.parametrize(("action", "message"), [
    ({}, "exactly one of 'tool'"), ({"tool": "calculator", "answer": "1"}, "exactly one of 'tool'"),
    ({"answer": "1", "arguments": {"a": 1}}, "'arguments' go with 'tool'"),
])
def test_malformed_actions(action: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ToolsAction.model_validate(action)


def test_reset_options_are_checked() -> None:
    env = ToolsEnvironment()
    for options, message in [({"kind": "riddle"}, "'kind' must be one of"), ({"max_steps": 0}, "'max_steps'"),
                             ({"level": 1}, "unknown reset options")]:
        with pytest.raises(ValueError, match=message):
            env.reset(seed=0, **options)


def test_a_session_mixing_mcp_frames_and_steps() -> None:
    with InProcessClient(ToolsEnvironment, observation_type=ToolsObservation) as client:
        result = client.reset(seed=5, kind="store")
        names = {listed["name"] for listed in client.list_tools()}
        assert names == set(result.observation.tools)
        # Notes set over MCP belong to the session, so a step sees them; MCP calls are not steps.
        client.call_tool("note_set", key="from-mcp", value="1")
        result = client.step(ToolsAction(tool="note_get", arguments={"key": "from-mcp"}))
        assert result.observation.result == "1"
        assert client.state().step_count == 1
        with pytest.raises(UsageError, match="episode control"):
            client.call_tool("reset")
        with pytest.raises(InvalidAction, match="is episode control"):
            client.step({"tool": "step", "arguments": {}})
        assert client.state().step_count == 1
        while not result.done:
            result = client.step(scripted(result.observation, random.Random(0)))
        assert result.reward == 1.0


def test_mcp_over_http_on_a_real_server() -> None:
    with launch(str(ROOT), runtime="inprocess") as server:
        transport = httpx.HTTPTransport(uds=server.url.removeprefix("unix://"))
        headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
        with httpx.Client(transport=transport, base_url="http://tools", headers=headers) as http:

            def rpc(method: str, **params: Any) -> dict[str, Any]:
                reply = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
                assert reply.status_code == 200
                body: dict[str, Any] = reply.json()
                return body

            listed = {entry["name"]: entry for entry in rpc("tools/list")["result"]["tools"]}
            assert set(listed) == {"calculator", "note_delete", "note_get", "note_list", "note_set", "search"}
            assert listed["calculator"]["input_schema"]["required"] == ["expression"]
            assert listed["search"]["input_schema"]["properties"]["k"]["default"] == 3
            result = rpc("tools/call", name="calculator", arguments={"expression": "(17 + 5) * sqrt(49)"})["result"]
            assert result["isError"] is False
            assert result["data"] == 154
            hits = rpc("tools/call", name="search", arguments={"query": "Kettle Point Lighthouse", "k": 1})
            assert hits["result"]["data"][0]["facts"]["first keeper"] == "Amos Threlkeld"
            failed = rpc("tools/call", name="calculator", arguments={"expression": "1 / 0"})["result"]
            assert failed["isError"] is True
            assert "division by zero" in failed["content"][0]["text"]
            assert rpc("tools/call", name="calculator", arguments={})["error"]["code"] == -32602
            assert rpc("tools/call", name="close", arguments={})["error"]["code"] == -32602
            # A session made over MCP keeps its notes between calls.
            session = rpc("openenv/session/create")["result"]["session_id"]
            rpc("tools/call", name="note_set", arguments={"key": "k", "value": "v"}, session_id=session)
            kept = rpc("tools/call", name="note_get", arguments={"key": "k"}, session_id=session)
            assert kept["result"]["data"] == "v"
            assert rpc("openenv/session/close", session_id=session)["result"] == {"closed": True}
