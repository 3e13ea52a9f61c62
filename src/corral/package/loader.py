"""Environment packages on disk: find the manifest, put the package on the import path, import its parts.

A package is a folder with a manifest (see :mod:`.manifest`) and its Python code either in ``src/`` or at
its top level. Loading one never installs anything: the folder that holds its code goes on ``sys.path``.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..environment import AsyncEnvironment, EnvClass, Environment
from ..errors import UsageError

if TYPE_CHECKING:
    from .manifest import Manifest

MANIFEST = "corral.yaml"
OPENENV_MANIFEST = "openenv.yaml"


@dataclass(frozen=True)
class EnvPackage:
    """An environment package: its folder, its manifest, and the folder its code imports from."""

    root: Path
    manifest: Manifest
    manifest_file: Path

    @property
    def import_root(self) -> Path:
        src = self.root / "src"
        return src if src.is_dir() else self.root

    @property
    def name(self) -> str:
        return self.manifest.name

    def activate(self) -> None:
        """Put the package's code on ``sys.path`` (first, so it wins over an installed copy)."""
        root = str(self.import_root)
        if root not in sys.path:
            sys.path.insert(0, root)
            importlib.invalidate_caches()

    def environment_class(self) -> EnvClass:
        if self.manifest.environment is None:
            raise UsageError(
                f"{self.manifest_file} names no 'environment' (package.module:Class); an OpenEnv package with "
                "only 'app' can be served, not driven by corral's tools"
            )
        return environment_class(self.import_target(self.manifest.environment, "environment"))

    def import_target(self, target: str, what: str) -> Any:
        """Import ``package.module:Attribute`` from this package."""
        self.activate()
        return import_target(target, f"{what} of {self.manifest_file}")


def is_package(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder with a manifest, or a manifest file."""
    p = Path(path)
    if p.is_file():
        return p.name in (MANIFEST, OPENENV_MANIFEST)
    return p.is_dir() and any((p / name).is_file() for name in (MANIFEST, OPENENV_MANIFEST))


def load_package(path: str | os.PathLike[str]) -> EnvPackage:
    """Read the package at ``path`` (its folder, or its manifest file)."""
    from .manifest import manifest_path, read_manifest

    p = Path(path).resolve()
    if p.is_file() and p.name in (MANIFEST, OPENENV_MANIFEST):
        file, root = p, p.parent
    elif p.is_dir():
        found = manifest_path(p)
        if found is None:
            raise UsageError(f"{p} has no {MANIFEST} (or {OPENENV_MANIFEST}); run 'corral init NAME' to make a "
                             "package, or point at the folder that has one")
        file, root = found, p
    else:
        raise UsageError(f"{path} does not exist; give the folder of an environment package")
    return EnvPackage(root=root, manifest=read_manifest(file), manifest_file=file)


def import_target(target: str, what: str) -> Any:
    """Import ``package.module:Attribute``, with errors that say what was being imported and why it failed."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"{what} must look like 'package.module:Name', not {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r} for {what}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{module_name!r} has no attribute {attr!r} ({what})")
        obj = getattr(obj, part)
    return obj


def environment_class(obj: Any, target: str | None = None) -> EnvClass:
    if not (isinstance(obj, type) and issubclass(obj, (Environment, AsyncEnvironment))):
        name = target or getattr(obj, "__qualname__", repr(obj))
        raise UsageError(f"{name} is not a corral Environment or AsyncEnvironment subclass")
    return obj
