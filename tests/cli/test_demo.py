"""``corral demo``: episodes in a sandbox by default, a clear fallback where the machine cannot make one."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from typer.testing import CliRunner

from corral.cli import demo as demo_module
from corral.cli import run as run_module
from corral.cli.main import app
from corral.runtime.sandbox import sandbox_available


def run(runtime: str = "sandbox", episodes: int = 5) -> tuple[dict[str, object], str]:
    out = io.StringIO()
    summary = demo_module.run_demo(env="guess", episodes=episodes, policy="scripted", seed=0,
                                   console=Console(file=out, width=120), runtime=runtime)
    return summary, out.getvalue()


@pytest.mark.skipif(not sandbox_available()[0], reason=f"no bubblewrap sandboxes here: {sandbox_available()[1]}")
def test_demo_runs_in_a_sandbox_by_default() -> None:
    summary, text = run()
    assert summary["runtime"] == "sandbox"
    assert summary["terminated"] == 5  # the scripted policy solves every episode
    assert "in a sandbox" in text
    assert "mean reward" in text


def test_demo_falls_back_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_module, "sandbox_available", lambda: (False, "bubblewrap cannot create namespaces"))
    summary, text = run()
    assert summary["runtime"] == "subprocess"
    assert "bubblewrap cannot create namespaces" in text
    assert "plain subprocess" in text


def test_demo_command_line() -> None:
    result = CliRunner().invoke(app, ["demo", "--episodes", "3", "--runtime", "inprocess", "--env", "echo"])
    assert result.exit_code == 0, result.output
    assert "corral demo: echo" in result.output


def test_demo_refuses_an_unknown_runtime() -> None:
    result = CliRunner().invoke(app, ["demo", "--runtime", "moon"])
    assert result.exit_code != 0
