"""Typed clients: results come back as ``CodingObservation`` and ``CodingState``."""

from __future__ import annotations

from corral import AsyncEnvClient, EnvClient

from .models import CodingAction, CodingObservation, CodingState


class CodingClient(EnvClient[CodingObservation, CodingState]):
    action_type = CodingAction
    observation_type = CodingObservation
    state_type = CodingState


class AsyncCodingClient(AsyncEnvClient[CodingObservation, CodingState]):
    action_type = CodingAction
    observation_type = CodingObservation
    state_type = CodingState
