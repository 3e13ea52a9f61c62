"""wordle: Guess a five-letter word in six tries with green/yellow/gray letter feedback."""

from .client import AsyncWordleClient, WordleClient
from .environment import WordleEnvironment
from .feedback import Mark, score
from .models import GuessRecord, WordleAction, WordleObservation, WordleState

__all__ = [
    "AsyncWordleClient",
    "GuessRecord",
    "Mark",
    "WordleAction",
    "WordleClient",
    "WordleEnvironment",
    "WordleObservation",
    "WordleState",
    "score",
]
