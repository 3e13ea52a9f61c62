"""Typed clients: results come back as ``MastermindObservation`` and ``MastermindState``."""

from __future__ import annotations

from corral import AsyncEnvClient, EnvClient

from .models import MastermindAction, MastermindObservation, MastermindState


class MastermindClient(EnvClient[MastermindObservation, MastermindState]):
    action_type = MastermindAction
    observation_type = MastermindObservation
    state_type = MastermindState


class AsyncMastermindClient(AsyncEnvClient[MastermindObservation, MastermindState]):
    action_type = MastermindAction
    observation_type = MastermindObservation
    state_type = MastermindState
