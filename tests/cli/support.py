"""What the CLI tests share: the real entry point run in this process, free ports, and environment
packages made by ``corral init`` in a temporary folder.

Each package gets its own Python package name: the tests import them into one process, where a second
package of the same name would be served from ``sys.modules`` instead of its own folder.
"""

from __future__ import annotations

import io
import itertools
import socket
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from corral.cli.main import main
from corral.package import scaffold

_numbers = itertools.count()


def make_package(tmp_path: Path, name: str = "demo") -> tuple[Path, str]:
    """Write a fresh package; return its folder and its Python package name."""
    package = f"cli_{name.replace('-', '_')}_{next(_numbers)}_{abs(hash(tmp_path)) % 10_000}"
    root = tmp_path / package
    scaffold(name, root, package=package)
    return root, package


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) with ``new`` in the file at ``path``."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def corral(*args: str) -> tuple[int, str, str]:
    """Run the real entry point (``main()``) in this process; return (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["corral", *args]
    try:
        with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exited:
            main()
    finally:
        sys.argv = argv
    code = exited.value.code
    return code if isinstance(code, int) else 1, out.getvalue(), err.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
