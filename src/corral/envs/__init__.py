"""Built-in environments, and resolving an environment from a name or ``module:Class``."""

from __future__ import annotations

import importlib

from ..environment import AsyncEnvironment, EnvClass, Environment
from ..errors import UsageError

BUILTINS = {
    "echo": "corral.envs.echo:EchoEnvironment",
    "guess": "corral.envs.guess:GuessEnvironment",
}


def resolve(spec: str) -> EnvClass:
    """Return the environment class for a built-in name (``echo``) or ``package.module:Class``."""
    target = BUILTINS.get(spec, spec)
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(
            f"unknown environment {spec!r}: use a built-in name ({', '.join(sorted(BUILTINS))}) "
            "or 'package.module:ClassName'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r} for environment {spec!r}: {exc}") from exc
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, (Environment, AsyncEnvironment))):
        raise UsageError(f"{target!r} is not a corral Environment or AsyncEnvironment subclass")
    return cls
