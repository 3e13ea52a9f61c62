"""The image of an environment package (``corral build PATH``), built from the package's own Dockerfile.

The build context is the package's folder (less version control, virtual environments, caches and build
output) plus ``wheels/``: Corral, the package and their dependencies as wheels prepared on the host the way
:mod:`.images` prepares them (local projects built, binary dependencies downloaded for the base image's
Python and platform, pinned to this interpreter's versions), with ``wheels/requirements.txt`` naming what
to install (the package and the manifest's ``requirements``). The Dockerfile builds ``FROM`` the build
argument ``BASE_IMAGE`` (Corral's local base image, made when missing) with no network at all.

The image is tagged with the manifest's ``image_tag`` (``corral-env/NAME:VERSION`` unless it names one) and
labelled with the environment to serve (``dev.corral.env``, which the Docker runtime reads), the package's
name and a digest of every input (``dev.corral.inputs``): a build whose digest an image already carries
returns at once, only adding the tag. The image works both ways: ``docker run -p 127.0.0.1:PORT:8000
IMAGE`` serves on port 8000 (its ``CMD``, OpenEnv's container contract), and the Docker runtime runs
``corral.runtime.child`` in it over a Unix socket.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import RuntimeFailed, UsageError
from ..package import EnvPackage, load_package
from .images import (
    LABEL_ENV,
    LABEL_INPUTS,
    RECIPE,
    BuiltImage,
    Progress,
    _built,
    _corral_project,
    _digest,
    _file_digest,
    _host_pins,
    _prepare_wheels,
    _project_name,
    _quiet,
    _tree_digest,
    _up_to_date,
    base_image,
)

LABEL_PACKAGE = "dev.corral.package"
#: Folders of a package that never go into a build context.
SKIPPED = frozenset({".git", ".hg", ".venv", "venv", "__pycache__", "build", "dist", "wheels", ".cache",
                     ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tox", "node_modules"})


def build_package(path: str | os.PathLike[str] | EnvPackage, *, tag: str | None = None, no_cache: bool = False,
                  client: Any = None, progress: Progress | None = None) -> BuiltImage:
    """Build (or find, when nothing changed) the image of the package at ``path``; tag it ``tag`` or the
    manifest's ``image_tag``. ``no_cache`` rebuilds every layer even when an image with the same inputs
    exists. Raises UsageError for a package that cannot be built (no Dockerfile, not a Python project),
    RuntimeUnavailable when Docker or mmdebstrap is missing, RuntimeFailed when a step fails."""
    from .docker import connect

    started = time.monotonic()
    package = path if isinstance(path, EnvPackage) else load_package(path)
    dockerfile = package.root / "Dockerfile"
    if not dockerfile.is_file():
        raise UsageError(f"{package.root} has no Dockerfile; 'corral init' writes one (FROM ${{BASE_IMAGE}}, "
                         "installing the wheels in wheels/)")
    if not (package.root / "pyproject.toml").is_file() and not (package.root / "setup.py").is_file():
        raise UsageError(f"{package.root} is not a Python project (no pyproject.toml or setup.py), so it cannot "
                         "be installed into an image")
    tag = tag or package.manifest.image_tag
    client = client or connect()
    report = progress or _quiet
    base = base_image(client=client, progress=report)
    projects = [_corral_project(), package.root]
    requirements = tuple(package.manifest.requirements)
    constraints = _host_pins(projects)
    key = _digest([RECIPE, "package", base.id, requirements, constraints, _tree_digest(projects[0]),
                   *_context_digests(package.root)])
    if not no_cache:
        cached = _up_to_date(client, key, tag, report, started)
        if cached is not None:
            return cached

    previous = _image_id(client, tag)
    with tempfile.TemporaryDirectory(prefix="corral-pkg-build-") as scratch:
        context = Path(scratch) / "context"
        _copy_context(package.root, context)
        staging = Path(scratch) / "staging" / "wheels"
        staging.mkdir(parents=True)
        labels = client.images.get(base.id).labels or {}
        _prepare_wheels(staging, projects, requirements, constraints, labels, report)
        shutil.move(str(staging), context / "wheels")
        install = [_project_name(package.root), *requirements]
        (context / "wheels" / "requirements.txt").write_text("\n".join(install) + "\n")
        image_labels = {LABEL_INPUTS: key, LABEL_PACKAGE: package.name,
                        "org.opencontainers.image.title": package.name,
                        "org.opencontainers.image.version": package.manifest.version,
                        "org.opencontainers.image.description": package.manifest.description}
        if package.manifest.environment:
            image_labels[LABEL_ENV] = package.manifest.environment
        report("build", f"building {tag} from {dockerfile}")
        _docker_build(client, context, tag, {"BASE_IMAGE": base.tag}, image_labels, no_cache, report)
    result = _built(client, tag, cached=False, started=started)
    if previous is not None and previous != result.id:
        _remove_untagged(client, previous)
    report("done", f"built {tag} ({result.size_mb:.0f} MB) in {result.seconds:.1f} s")
    return result


def _walk_context(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED and not d.endswith(".egg-info"))
        for name in sorted(files):
            if not name.endswith((".pyc", ".pyo")):
                yield Path(folder) / name


def _context_digests(root: Path) -> list[str]:
    """One digest per file of the build context (its path and its bytes)."""
    return [f"{path.relative_to(root)}:{_file_digest(path)}" for path in _walk_context(root)]


def _copy_context(root: Path, context: Path) -> None:
    for path in _walk_context(root):
        target = context / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target, follow_symlinks=True)


def _docker_build(client: Any, context: Path, tag: str, buildargs: dict[str, str], labels: dict[str, str],
                  no_cache: bool, report: Progress) -> None:
    tail: list[str] = []
    try:
        for chunk in client.api.build(path=str(context), tag=tag, buildargs=buildargs, labels=labels,
                                      nocache=no_cache, pull=False, rm=True, forcerm=True, network_mode="none",
                                      decode=True):
            if "error" in chunk:
                raise RuntimeFailed(f"building {tag} failed: {chunk['error'].strip()}; the build output ends "
                                    "with:\n" + "\n".join(tail[-15:]))
            for line in str(chunk.get("stream", "")).splitlines():
                line = line.strip()
                if line:
                    tail.append(line)
                    report("build", line)
    except RuntimeFailed:
        raise
    except Exception as exc:
        raise RuntimeFailed(f"building {tag} failed: {exc}") from exc


def _image_id(client: Any, tag: str) -> str | None:
    from docker.errors import ImageNotFound  # type: ignore[import-untyped]

    try:
        return str(client.images.get(tag).id)
    except ImageNotFound:
        return None


def _remove_untagged(client: Any, image_id: str) -> None:
    """Remove an earlier build that lost its last tag to this one (unless a container still uses it)."""
    with contextlib.suppress(Exception):
        image = client.images.get(image_id)
        if not image.tags and LABEL_INPUTS in (image.labels or {}):
            client.images.remove(image_id, noprune=False)
