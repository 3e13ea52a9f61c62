"""Environment packages: the manifest, loading a package from its folder, and ``corral init``'s template.

Names are imported on first use (PEP 562), so importing a submodule stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .loader import MANIFEST, OPENENV_MANIFEST, EnvPackage, is_package, load_package
    from .manifest import Manifest, ValidateSettings, read_manifest
    from .scaffolding import scaffold

_WHERE = {
    "EnvPackage": "loader", "is_package": "loader", "load_package": "loader",
    "MANIFEST": "loader", "OPENENV_MANIFEST": "loader", "Manifest": "manifest",
    "ValidateSettings": "manifest", "read_manifest": "manifest",
    "scaffold": "scaffolding",
}

__all__ = [
    "MANIFEST",
    "OPENENV_MANIFEST",
    "EnvPackage",
    "Manifest",
    "ValidateSettings",
    "is_package",
    "load_package",
    "read_manifest",
    "scaffold",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'corral.package' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
