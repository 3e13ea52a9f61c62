"""Clients: ``EnvClient`` (blocking) and ``AsyncEnvClient`` (async), with identical method names."""

from ._base import AnyObservation, LinkState, Timeouts
from .async_client import AsyncEnvClient, AsyncSessionGroup
from .sync_client import EnvClient, SessionGroup

__all__ = [
    "AnyObservation",
    "AsyncEnvClient",
    "AsyncSessionGroup",
    "EnvClient",
    "LinkState",
    "SessionGroup",
    "Timeouts",
]
