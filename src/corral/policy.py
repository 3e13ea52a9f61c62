"""Policies for rollouts: ``policy(observation, rng) -> action``.

A policy is any callable taking the current observation and a :class:`random.Random` (seeded per run) and
returning an action, as the environment's ``Action`` model or a plain dict. Policies see only observations,
so an environment whose best play needs history puts that history in its observation.

By name, a policy is looked up in the package's manifest (``policies:``), then in the ``policies`` module
beside the environment's package (``corral_wordle.policies:scripted`` for ``corral_wordle.environment``),
then taken as ``package.module:function``. Every reference environment ships ``scripted`` (reaches the
maximum reward) and ``random``.
"""

from __future__ import annotations

import importlib
import inspect
import random
from collections.abc import Callable
from typing import Any

from .environment import EnvClass
from .errors import UsageError
from .package.loader import EnvPackage, import_target
from .types import Action

Policy = Callable[[Any, random.Random], "Action | dict[str, Any]"]


def load_policy(name: str, env_cls: EnvClass, package: EnvPackage | None = None) -> Policy:
    """The policy called ``name`` for ``env_cls`` (see the module docstring for the search order)."""
    if package is not None and name in package.manifest.policies:
        return _callable(package.import_target(package.manifest.policies[name], f"policy {name!r}"), name)
    if ":" in name:
        return _callable(import_target(name, f"policy {name!r}"), name)
    module_name = env_cls.__module__.rpartition(".")[0] or env_cls.__module__
    # In a policies module a policy may go by its bare name; beside the environment it is NAME_policy.
    for candidate, attrs in ((f"{module_name}.policies", (name, f"{name}_policy")),
                             (env_cls.__module__, (f"{name}_policy",))):
        try:
            module = importlib.import_module(candidate)
        except ModuleNotFoundError as exc:
            if exc.name != candidate:
                raise
            continue
        for attr in attrs:
            found = getattr(module, attr, None)
            if inspect.isfunction(found) or (callable(found) and not inspect.ismodule(found)):
                return _callable(found, name)
    raise UsageError(f"{env_cls.info.name} has no {name!r} policy: declare it under 'policies:' in corral.yaml, "
                     "define it in the package's policies.py, or pass --policy package.module:function")


def _callable(obj: Any, name: str) -> Policy:
    if not callable(obj):
        raise UsageError(f"policy {name!r} is a {type(obj).__name__}, not a function (observation, rng) -> action")
    policy: Policy = obj
    return policy
