"""Corral: fast, isolated, OpenEnv-compatible environments for agentic LLM training."""

from ._version import __version__
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
