"""chess: Play chess against a seeded built-in opponent; moves in UCI or SAN."""

from .client import AsyncChessClient, ChessClient
from .environment import ChessEnvironment
from .models import ChessAction, ChessObservation, ChessState

__all__ = [
    "AsyncChessClient",
    "ChessAction",
    "ChessClient",
    "ChessEnvironment",
    "ChessObservation",
    "ChessState",
]
