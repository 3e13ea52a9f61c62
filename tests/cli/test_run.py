"""corral run: episodes with a named policy, a summary, and a record of every step."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from corral.cli.main import app
from corral.cli.run import run_episodes
from corral.errors import CorralError
from tests.cli.support import make_package


def read(record: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_run_a_package_with_its_scripted_policy_and_record_every_step(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    record = tmp_path / "steps.jsonl"
    result = CliRunner().invoke(app, ["run", str(root), "--episodes", "3", "--policy", "scripted", "--seed", "5",
                                      "--runtime", "inprocess", "--record", str(record)])
    assert result.exit_code == 0, result.output
    assert "corral run: demo (scripted policy)" in result.output
    steps = read(record)
    assert {step["episode"] for step in steps} == {0, 1, 2}
    for episode in range(3):
        mine = [step for step in steps if step["episode"] == episode]
        assert [step["step"] for step in mine] == list(range(len(mine)))
        first, last = mine[0], mine[-1]
        assert first["action"] is None
        assert first["reward"] is None
        assert first["seed"] == 5 + episode
        assert last["terminated"] is True
        assert last["observation"]["counter"] == last["observation"]["target"]
        assert sum(step["reward"] or 0.0 for step in mine) == 1.0
        assert all(step["action"]["delta"] in (-1, 0, 1) for step in mine[1:])
        assert all(isinstance(step["elapsed_s"], float) and step["elapsed_s"] >= 0 for step in mine)
        assert set(first) == {"episode", "seed", "step", "action", "observation", "reward", "terminated",
                              "truncated", "elapsed_s"}


def test_concurrent_episodes_are_the_same_episodes(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    records = []
    for concurrency in (1, 3):
        record = tmp_path / f"c{concurrency}.jsonl"
        summary = run_episodes(str(root), episodes=6, policy="random", seed=1, runtime="inprocess", record=record,
                               concurrency=concurrency, console=Console(file=io.StringIO()))
        assert summary["episodes"] == 6
        steps = [{k: v for k, v in step.items() if k != "elapsed_s"} for step in read(record)]
        records.append(sorted(steps, key=lambda s: (s["episode"], s["step"])))  # type: ignore[arg-type, return-value]
    assert records[0] == records[1]


def test_max_steps_cuts_episodes(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    summary = run_episodes(str(root), episodes=2, policy="random", max_steps=1, runtime="inprocess",
                           console=Console(file=io.StringIO()))
    assert summary["steps"] == 2
    assert summary["cut"] + summary["terminated"] == 2


def test_a_builtin_with_a_module_policy() -> None:
    out = io.StringIO()
    summary = run_episodes("echo", episodes=2, policy="corral.envs.echo:scripted_policy", max_steps=4,
                           runtime="inprocess", console=Console(file=out, width=120))
    assert summary["steps"] == 8
    assert summary["cut"] == 2
    assert abs(summary["mean_reward"] - 4 * 1.2) < 1e-9  # "hello corral" is 12 characters, 0.1 each
    assert "mean reward" in out.getvalue()


def test_an_unknown_policy_is_a_clear_error(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    result = CliRunner().invoke(app, ["run", str(root), "--policy", "clever", "--runtime", "inprocess"])
    assert result.exit_code == 1
    assert isinstance(result.exception, CorralError)
    assert "has no 'clever' policy" in str(result.exception)


def test_an_unwritable_record_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", "echo", "--runtime", "inprocess", "--max-steps", "1",
                                      "--record", str(tmp_path / "missing" / "steps.jsonl")])
    assert result.exit_code == 1
    assert "cannot write the record" in str(result.exception)
