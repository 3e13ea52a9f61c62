"""Typed clients: results come back as ``WordleObservation`` and ``WordleState``."""

from __future__ import annotations

from corral import AsyncEnvClient, EnvClient

from .models import WordleAction, WordleObservation, WordleState


class WordleClient(EnvClient[WordleObservation, WordleState]):
    action_type = WordleAction
    observation_type = WordleObservation
    state_type = WordleState


class AsyncWordleClient(AsyncEnvClient[WordleObservation, WordleState]):
    action_type = WordleAction
    observation_type = WordleObservation
    state_type = WordleState
