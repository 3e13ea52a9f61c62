"""Environment packages for the CLI tests, made by ``corral init`` in a temporary folder.

Each package gets its own Python package name: the tests import them into one process, where a second
package of the same name would be served from ``sys.modules`` instead of its own folder.
"""

from __future__ import annotations

import itertools
from pathlib import Path

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
