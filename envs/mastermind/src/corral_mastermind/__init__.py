"""mastermind: Crack a secret colour code with exact/partial peg feedback."""

from .client import AsyncMastermindClient, MastermindClient
from .code import score
from .environment import MastermindEnvironment
from .models import GuessRecord, MastermindAction, MastermindObservation, MastermindState

__all__ = [
    "AsyncMastermindClient",
    "GuessRecord",
    "MastermindAction",
    "MastermindClient",
    "MastermindEnvironment",
    "MastermindObservation",
    "MastermindState",
    "score",
]
