"""Corral: fast, isolated, OpenEnv-compatible environments for agentic LLM training."""

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .client import AsyncEnvClient, AsyncSessionGroup, EnvClient, SessionGroup, Timeouts
    from .environment import AsyncEnvironment, Environment
    from .errors import (
        CapacityReached,
        ClientClosed,
        ConnectionLost,
        CorralError,
        DeadlineExceeded,
        EnvironmentFailed,
        FactoryError,
        InvalidAction,
        InvalidFrame,
        ProtocolError,
        ResetNeeded,
        SeedNotSupported,
        SessionError,
        TransportError,
        Unauthorized,
        UsageError,
    )
    from .server import ServerConfig, create_app, serve
    from .tools import tool
    from .types import Action, EnvInfo, Observation, State, StepResult

# Names load on first use, so a server process (or a sandboxed one) pays only for what it imports.
_LAZY = {
    "AsyncEnvClient": "client", "AsyncSessionGroup": "client", "EnvClient": "client", "SessionGroup": "client",
    "Timeouts": "client", "AsyncEnvironment": "environment", "Environment": "environment",
    "ServerConfig": "server", "create_app": "server", "serve": "server", "tool": "tools",
    "Action": "types", "EnvInfo": "types", "Observation": "types", "State": "types", "StepResult": "types",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        if name in __all__:
            module = "errors"
        else:
            raise AttributeError(f"module 'corral' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Action",
    "AsyncEnvClient",
    "AsyncEnvironment",
    "AsyncSessionGroup",
    "CapacityReached",
    "ClientClosed",
    "ConnectionLost",
    "CorralError",
    "DeadlineExceeded",
    "EnvClient",
    "EnvInfo",
    "Environment",
    "EnvironmentFailed",
    "FactoryError",
    "InvalidAction",
    "InvalidFrame",
    "Observation",
    "ProtocolError",
    "ResetNeeded",
    "SeedNotSupported",
    "ServerConfig",
    "SessionError",
    "SessionGroup",
    "State",
    "StepResult",
    "Timeouts",
    "TransportError",
    "Unauthorized",
    "UsageError",
    "__version__",
    "create_app",
    "serve",
    "tool",
]
