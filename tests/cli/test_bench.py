"""corral bench: the built-in measurement, and the suites of a checkout (found, or refused in one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.cli.bench import find_checkout
from corral.errors import UsageError
from tests.cli.support import corral

ROOT = Path(__file__).resolve().parents[2]


def test_the_builtin_mode_measures_echo() -> None:
    code, out, err = corral("bench", "--runtime", "inprocess", "--steps", "50", "--sessions", "4", "--json")
    assert code == 0, err
    numbers = json.loads(out[out.index("{"):])
    assert numbers["env"] == "echo"
    assert numbers["runtime"] == "inprocess"
    assert numbers["batched_sessions"] == 4
    for key in ("start_to_ready_ms", "open_p50_ms", "step_p50_us", "step_p99_us", "steps_per_s",
                "batched_steps_per_s"):
        assert numbers[key] > 0, key
    assert numbers["step_p99_us"] >= numbers["step_p50_us"]
    assert "step round trip p50" in out


def test_the_builtin_mode_steps_another_environment_with_its_scripted_move() -> None:
    code, out, err = corral("bench", "--env", "guess", "--runtime", "inprocess", "--steps", "20", "--sessions", "2")
    assert code == 0, err
    assert "corral bench: guess" in out


def test_a_suite_runs_the_checkout_script_with_the_options_after_dashes() -> None:
    code, _, err = corral("bench", "--suite", "quick", "--checkout", str(ROOT), "--", "--help")
    assert code == 0, err
    assert "run.py --quick --help" in err


def test_the_checkout_is_found_from_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "docs")
    assert find_checkout(None) == ROOT


def test_no_checkout_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="pass --checkout PATH"):
        find_checkout(tmp_path)
    code, _, err = corral("bench", "--suite", "full", "--checkout", str(tmp_path))
    assert code == 1
    assert err.startswith(f"error: no Corral checkout with benchmarks/run.py in {tmp_path}")
    assert err.count("\n") == 1


def test_an_unknown_suite_is_one_line() -> None:
    code, _, err = corral("bench", "--suite", "moon")
    assert code == 1
    assert "unknown suite 'moon'" in err
