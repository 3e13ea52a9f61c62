"""``corral init``: a new environment package from Corral's own template.

The template (``template/`` beside this module) is a working environment with models, a typed client,
policies, a manifest, a README, a Dockerfile FROM Corral's local base image, and tests that pass as made.
Files are ``string.Template`` texts; ``__package__`` in a path becomes the Python package's name.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from .._version import __version__
from ..errors import UsageError
from .manifest import NAME

TEMPLATE = Path(__file__).parent / "template"


def python_package(name: str) -> str:
    """The import name for an environment called ``name`` (``my-game`` → ``my_game``)."""
    return name.replace("-", "_")


def class_prefix(name: str) -> str:
    """``my-game`` → ``MyGame``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]+", name) if part)


def scaffold(name: str, directory: Path, *, package: str | None = None, description: str | None = None,
             base_image: str | None = None, force: bool = False) -> list[Path]:
    """Write a new package for environment ``name`` into ``directory``; return the files written.

    Refuses a directory that exists and is not empty unless ``force``; never overwrites a file either way.
    """
    if not NAME.match(name):
        raise UsageError(f"environment name {name!r} must be lower case letters, digits, '-' or '_', starting with "
                         "a letter (for example 'my-game')")
    package = package or python_package(name)
    if not package.isidentifier() or keyword.iskeyword(package):
        raise UsageError(f"{package!r} is not a valid Python package name; pass --package NAME")
    if directory.exists() and any(directory.iterdir()) and not force:
        raise UsageError(f"{directory} already exists and is not empty; choose another folder or pass --force "
                         "(existing files are never overwritten)")
    if base_image is None:
        from ..runtime.images import BASE_REPOSITORY

        base_image = f"{BASE_REPOSITORY}:{__version__}-py3.11"
    values = {
        "name": name,
        "package": package,
        "Class": class_prefix(name),
        "dist": package.replace("_", "-"),
        "description": description or f"The {name} environment.",
        "corral_version": __version__,
        "base_image": base_image,
        "image": f"corral-env/{name}:0.1.0",
        "port": "8000",
    }
    written: list[Path] = []
    for source in sorted(TEMPLATE.rglob("*.tmpl")):
        relative = source.relative_to(TEMPLATE).with_suffix("")
        target = directory / str(relative).replace("__package__", package)
        if target.exists():
            continue
        text = Template(source.read_text(encoding="utf-8")).substitute(values)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
