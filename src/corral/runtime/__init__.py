"""Runtimes: where an environment server runs, from this process to a Docker container.

``launch("echo", runtime="sandbox")`` starts a server, waits for a real session round trip, and returns a
:class:`Server` that stops (leaving nothing behind) when its ``with`` block ends. Tiers, least to most
isolated: ``inprocess``, ``subprocess``, ``sandbox`` (bubblewrap), ``docker``. See docs/runtimes.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import UsageError
from .base import Limits, Runtime, Server, ServerSpec

#: Runtime names and where their classes live (Docker's needs the ``docker`` extra, so it loads on use).
RUNTIMES = {
    "inprocess": "corral.runtime.inprocess:InProcessRuntime",
    "subprocess": "corral.runtime.process:SubprocessRuntime",
    "sandbox": "corral.runtime.sandbox:SandboxRuntime",
    "docker": "corral.runtime.docker:DockerRuntime",
}


def get_runtime(runtime: str | Runtime, **options: Any) -> Runtime:
    """A runtime by name (``inprocess``, ``subprocess``, ``sandbox``, ``docker``), or ``runtime`` itself."""
    if isinstance(runtime, Runtime):
        if options:
            raise UsageError("runtime options apply to a runtime given by name, not to a Runtime instance")
        return runtime
    target = RUNTIMES.get(runtime)
    if target is None:
        raise UsageError(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    module_name, _, attr = target.partition(":")
    cls: type[Runtime] = getattr(importlib.import_module(module_name), attr)
    return cls(**options)


def launch(env: str | ServerSpec, runtime: str | Runtime = "sandbox", **spec_options: Any) -> Server:
    """Start a server for ``env`` in ``runtime`` and return it once a session round trip works.

    ``spec_options`` are :class:`ServerSpec` fields (``config``, ``limits``, ``environment``, ``secrets``,
    ``ready_timeout_s``...). Use the result as a context manager, or call ``stop()``.
    """
    return get_runtime(runtime).start(env, **spec_options)


__all__ = ["RUNTIMES", "Limits", "Runtime", "Server", "ServerSpec", "get_runtime", "launch"]
