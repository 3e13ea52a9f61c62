"""main(): every failure is one line on stderr and a non-zero exit; --debug shows the traceback instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import UsageError
from tests.cli.support import corral


def test_a_corral_error_is_one_line() -> None:
    code, out, err = corral("run", "no-such-env")
    assert code == 1
    assert err.startswith("error: unknown environment 'no-such-env'")
    assert err.count("\n") == 1
    assert "Traceback" not in out + err


def test_a_long_message_is_not_wrapped(tmp_path: Path) -> None:
    code, _, err = corral("validate", str(tmp_path / ("deep" * 40)) + "/", "--runtime", "inprocess")
    assert code == 1
    assert err.count("\n") == 1


def test_any_other_exception_is_one_line_too() -> None:
    # json.dumps is no policy: called as policy(observation, rng), it raises TypeError inside the rollout.
    code, out, err = corral("run", "echo", "--runtime", "inprocess", "--policy", "json:dumps", "--max-steps", "1")
    assert code == 1
    assert err.startswith("error: TypeError: ")
    assert "corral --debug" in err
    assert err.count("\n") == 1
    assert "Traceback" not in out + err


def test_debug_shows_the_traceback() -> None:
    with pytest.raises(UsageError, match="unknown environment"):
        corral("--debug", "run", "no-such-env")


def test_usage_errors_keep_their_message_and_exit_2() -> None:
    code, _, err = corral("run")
    assert code == 2
    assert "Missing argument 'env'" in err
    code, _, err = corral("run", "echo", "--episodes", "0")
    assert code == 2
    assert "--episodes" in err


def test_ctrl_c_exits_130_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "interrupting.py").write_text("def policy(observation, rng):\n    raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = corral("run", "echo", "--runtime", "inprocess", "--policy", "interrupting:policy")
    assert code == 130
    assert "Traceback" not in out + err
    assert "error" not in err


def test_help_on_every_command() -> None:
    for command in ("init", "serve", "validate", "run", "bench", "demo", "gc"):
        code, out, _ = corral(command, "--help")
        assert code == 0, command
        assert "--help" in out, command
