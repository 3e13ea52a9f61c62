"""``corral gc``: reports what it would remove, and never touches a live owner's servers."""

from __future__ import annotations

from typer.testing import CliRunner

from corral.cli.main import app
from corral.runtime import launch


def test_gc_dry_run_leaves_a_live_server_alone() -> None:
    with launch("echo", runtime="subprocess") as server:
        result = CliRunner().invoke(app, ["gc", "--dry-run", "--min-age", "0"])
        assert result.exit_code == 0, result.output
        assert str(server.pid) not in result.output
        assert server.alive()


def test_gc_help() -> None:
    result = CliRunner().invoke(app, ["gc", "--help"])
    assert result.exit_code == 0
    assert "dead owners" in result.output
