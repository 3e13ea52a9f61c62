"""Built-in environments, and resolving an environment from whatever a user typed.

An environment is named by, in this order: a built-in name (``echo``, ``guess``); the folder of an
environment package (one with ``corral.yaml`` or ``openenv.yaml``); the name of an installed package that
registers itself under the ``corral.environments`` entry-point group; or ``package.module:Class``.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points

from ..environment import EnvClass
from ..errors import UsageError
from ..package.loader import environment_class, import_target, is_package, load_package

BUILTINS = {
    "echo": "corral.envs.echo:EchoEnvironment",
    "guess": "corral.envs.guess:GuessEnvironment",
}
ENTRY_POINTS = "corral.environments"


def installed() -> dict[str, str]:
    """Environments that installed packages register, by name: ``{name: "module:Class"}``."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINTS)}


def target(spec: str) -> str:
    """``spec`` as ``module:Class`` importable in this process.

    A package folder is put on ``sys.path`` first, so a runtime that hands this process's import path to
    its servers (subprocess, sandbox) lets them import it too.
    """
    if spec in BUILTINS:
        return BUILTINS[spec]
    if _is_path(spec):
        package = load_package(spec)
        if package.manifest.environment is None:
            raise UsageError(f"{package.manifest_file} names no 'environment' (package.module:Class)")
        package.activate()
        return package.manifest.environment
    registered = installed()
    if spec in registered:
        return registered[spec]
    if ":" not in spec:
        names = sorted({*BUILTINS, *registered})
        raise UsageError(f"unknown environment {spec!r}: use a name ({', '.join(names)}), the folder of an "
                         "environment package, or 'package.module:ClassName'")
    return spec


def resolve(spec: str) -> EnvClass:
    """Return the environment class for any name :func:`target` accepts.

    For a package folder whose class declares no README, the package's README.md becomes the
    ``readme_content`` that ``/metadata`` serves.
    """
    where = target(spec)
    env_cls = environment_class(import_target(where, f"environment {spec!r}"), where)
    if _is_path(spec) and env_cls.info.readme_content is None:
        readme = load_package(spec).root / "README.md"
        if readme.is_file():
            env_cls.info = env_cls.info.model_copy(update={"readme_content": readme.read_text(encoding="utf-8")})
    return env_cls


def _is_path(spec: str) -> bool:
    return os.sep in spec or spec.startswith(".") or is_package(spec)
