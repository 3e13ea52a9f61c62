"""Built-in environments, and resolving an environment from whatever a user typed.

An environment is named by, in this order: a built-in name (``echo``, ``guess``); the folder of an
environment package (one with ``corral.yaml`` or ``openenv.yaml``); the name of an installed package that
registers itself under the ``corral.environments`` entry-point group; or ``package.module:Class``.

Package and entry-point machinery is imported only when a name needs it, so serving a built-in stays quick
to start.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..environment import EnvClass
from ..errors import UsageError

if TYPE_CHECKING:
    from ..package.loader import EnvPackage

BUILTINS = {
    "echo": "corral.envs.echo:EchoEnvironment",
    "guess": "corral.envs.guess:GuessEnvironment",
}
ENTRY_POINTS = "corral.environments"


def installed() -> dict[str, str]:
    """Environments that installed packages register, by name: ``{name: "module:Class"}``."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINTS)}


def package_of(spec: str) -> EnvPackage | None:
    """The package ``spec`` names when it is a folder or a manifest file; None for any other kind of name."""
    if spec in BUILTINS or not _is_path(spec):
        return None
    from ..package.loader import load_package

    return load_package(spec)


def target(spec: str) -> str:
    """``spec`` as ``module:Class`` importable in this process.

    A package folder is put on ``sys.path`` first, so a runtime that hands this process's import path to
    its servers (subprocess, sandbox) lets them import it too.
    """
    if spec in BUILTINS:
        return BUILTINS[spec]
    package = package_of(spec)
    if package is not None:
        if package.manifest.environment is None:
            raise UsageError(f"{package.manifest_file} names no 'environment' (package.module:Class)")
        package.activate()
        return package.manifest.environment
    if ":" in spec:
        return spec
    registered = installed()
    if spec in registered:
        return registered[spec]
    names = sorted({*BUILTINS, *registered})
    raise UsageError(f"unknown environment {spec!r}: use a name ({', '.join(names)}), the folder of an "
                     "environment package, or 'package.module:ClassName'")


def resolve(spec: str) -> EnvClass:
    """Return the environment class for any name :func:`target` accepts.

    For a package folder whose class declares no README, the package's README.md becomes the
    ``readme_content`` that ``/metadata`` serves.
    """
    from ..package.loader import environment_class, import_target

    where = target(spec)
    env_cls = environment_class(import_target(where, f"environment {spec!r}"), where)
    package = package_of(spec)
    if package is not None and env_cls.info.readme_content is None:
        readme = package.root / "README.md"
        if readme.is_file():
            env_cls.info = env_cls.info.model_copy(update={"readme_content": readme.read_text(encoding="utf-8")})
    return env_cls


def _is_path(spec: str) -> bool:
    if os.sep in spec or spec.startswith("."):
        return True
    from ..package.loader import is_package

    return ":" not in spec and is_package(spec)
