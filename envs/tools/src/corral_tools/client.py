"""Typed clients: results come back as ``ToolsObservation`` and ``ToolsState``."""

from __future__ import annotations

from corral import AsyncEnvClient, EnvClient

from .models import ToolsAction, ToolsObservation, ToolsState


class ToolsClient(EnvClient[ToolsObservation, ToolsState]):
    action_type = ToolsAction
    observation_type = ToolsObservation
    state_type = ToolsState


class AsyncToolsClient(AsyncEnvClient[ToolsObservation, ToolsState]):
    action_type = ToolsAction
    observation_type = ToolsObservation
    state_type = ToolsState
