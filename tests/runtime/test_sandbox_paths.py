"""A checkout or virtual environment under /tmp still runs in a sandbox (whose /tmp is its own)."""

from __future__ import annotations

from pathlib import Path

from corral.runtime.base import Limits
from corral.runtime.sandbox import HOST_TMP, bwrap_arguments, inside


def test_host_tmp_paths_move_out_of_the_sandboxes_tmp() -> None:
    assert inside("/tmp/checkout/.venv/bin/python") == f"{HOST_TMP}/checkout/.venv/bin/python"
    assert inside("/tmp") == HOST_TMP
    assert inside("/tmpfoo") == "/tmpfoo"
    assert inside("/work/src") == "/work/src"


def test_no_bind_lands_under_the_private_tmp(tmp_path: Path) -> None:
    args = bwrap_arguments(tmp_path, Limits())
    targets = [args[i + 2] for i, arg in enumerate(args) if arg == "--ro-bind"]
    assert not [t for t in targets if t == "/tmp" or t.startswith("/tmp/")]
