"""Typed clients: results come back as ``GridworldObservation`` and ``GridworldState``."""

from __future__ import annotations

from corral import AsyncEnvClient, EnvClient

from .models import GridworldAction, GridworldObservation, GridworldState


class GridworldClient(EnvClient[GridworldObservation, GridworldState]):
    action_type = GridworldAction
    observation_type = GridworldObservation
    state_type = GridworldState


class AsyncGridworldClient(AsyncEnvClient[GridworldObservation, GridworldState]):
    action_type = GridworldAction
    observation_type = GridworldObservation
    state_type = GridworldState
