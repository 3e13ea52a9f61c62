"""corral validate: packages (live in a runtime), URLs of running servers, and images in Docker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.cli.main import app
from corral.cli.validate import sample_from_schema
from corral.envs.echo import EchoAction
from corral.errors import CorralError
from corral.runtime import launch
from tests.cli.support import corral, edit, free_port, make_package


def test_a_new_package_validates_live_in_a_subprocess(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    result = CliRunner().invoke(app, ["validate", str(root)])
    assert result.exit_code == 0, result.output
    assert "20 passed, 0 failed, 0 skipped" in result.output
    assert "subprocess server ready" in result.output


def test_a_failing_package_prints_the_table_then_one_error_line(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    edit(root / "corral.yaml", "max_reward: 1.0", "max_reward: 3.0")
    code, out, err = corral("validate", str(root), "--runtime", "inprocess")
    assert code == 1
    row = next(line for line in out.splitlines() if "max_reward" in line)
    assert "fail" in row
    assert "does not reach" in row
    assert err.strip().splitlines() == [f"error: {root} failed 1 of 20 checks (max_reward)"]
    assert "Traceback" not in out + err


def test_json_report(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    edit(root / "corral.yaml", "max_steps: 40", "max_steps: 0")
    code, out, err = corral("validate", str(root), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert report["checks"][0]["name"] == "manifest"
    assert report["checks"][0]["outcome"] == "fail"
    assert "max_steps" in report["checks"][0]["message"]
    assert err.startswith("error: ")
    assert err.count("\n") == 1


def test_a_running_server_by_its_url() -> None:
    with launch("echo", "inprocess") as server:
        assert server.token is not None
        result = CliRunner().invoke(app, ["validate", server.url, "--token", server.token])
    assert result.exit_code == 0, result.output
    assert "auth" in result.output
    assert "resume" in result.output
    assert "0 failed" in result.output


def test_a_url_where_nothing_listens_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = corral("validate", url)
    assert code == 1
    assert err.startswith(f"error: cannot reach {url}")
    assert err.count("\n") == 1
    code, out, err = corral("validate", url, "--sample-action", '{"message": "hi"}')
    assert code == 1
    assert "health" in out
    assert "cannot talk to the server" in out


def test_sample_action_from_a_schema() -> None:
    schema = EchoAction.model_json_schema()
    assert sample_from_schema(schema, schema.get("$defs", {})) == {"message": "corral"}
    nested = {"type": "object", "required": ["move", "n"], "properties": {
        "move": {"$ref": "#/$defs/Move"}, "n": {"type": "integer", "examples": [3]}},
        "$defs": {"Move": {"enum": ["up", "down"]}}}
    assert sample_from_schema(nested, nested["$defs"]) == {"move": "up", "n": 3}


def test_sample_action_must_be_a_json_object() -> None:
    result = CliRunner().invoke(app, ["validate", "http://127.0.0.1:9", "--sample-action", "[1]"])
    assert result.exit_code == 1
    assert isinstance(result.exception, CorralError)
    assert "must be a JSON object" in str(result.exception)


@pytest.mark.slow
def test_an_image_runs_in_docker_and_validates() -> None:
    from corral.runtime.images import build_image
    from tests.runtime.docker_support import docker_client, managed_containers

    image = build_image("echo", client=docker_client())
    result = CliRunner().invoke(app, ["validate", image.tag])
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output
    assert managed_containers() == []


def test_reset_options_must_be_a_json_object_and_need_a_url_or_image() -> None:
    result = CliRunner().invoke(app, ["validate", "http://127.0.0.1:9", "--reset-options", '"copy"'])
    assert isinstance(result.exception, CorralError)
    assert "--reset-options must be a JSON object" in str(result.exception)
    result = CliRunner().invoke(app, ["validate", "echo", "--reset-options", '{"task": "copy"}'])
    assert isinstance(result.exception, CorralError)
    assert "validate.reset_options in its corral.yaml" in str(result.exception)
