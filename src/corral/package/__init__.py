"""Environment packages: the manifest, loading a package from its folder, and ``corral init``'s template."""

from .loader import EnvPackage, is_package, load_package
from .manifest import MANIFEST, OPENENV_MANIFEST, Manifest, ValidateSettings, read_manifest
from .scaffold import scaffold

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
