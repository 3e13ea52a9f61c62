"""Corral: fast, isolated, OpenEnv-compatible environments for agentic LLM training."""

from ._version import __version__
from .environment import AsyncEnvironment, Environment
from .errors import CorralError
from .server import ServerConfig, create_app, serve
from .tools import tool
from .types import Action, EnvInfo, Observation, State, StepResult

__all__ = [
    "Action",
    "AsyncEnvironment",
    "CorralError",
    "EnvInfo",
    "Environment",
    "Observation",
    "ServerConfig",
    "State",
    "StepResult",
    "__version__",
    "create_app",
    "serve",
    "tool",
]
