"""Typed clients: results come back as ``ChessObservation`` and ``ChessState``."""

from __future__ import annotations

from corral import AsyncEnvClient, EnvClient

from .models import ChessAction, ChessObservation, ChessState


class ChessClient(EnvClient[ChessObservation, ChessState]):
    action_type = ChessAction
    observation_type = ChessObservation
    state_type = ChessState


class AsyncChessClient(AsyncEnvClient[ChessObservation, ChessState]):
    action_type = ChessAction
    observation_type = ChessObservation
    state_type = ChessState
