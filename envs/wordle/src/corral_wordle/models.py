"""What goes over the wire: the guess the agent sends, the board it sees, the episode's state."""

from __future__ import annotations

from corral import Action, Observation, State
from pydantic import BaseModel, Field

from .feedback import Mark


class WordleAction(Action):
    guess: str = Field(max_length=64, description="A five-letter English word; case and surrounding spaces "
                       "are ignored.", examples=["crane"])


class GuessRecord(BaseModel):
    """One row of the board: the word guessed and the mark of each of its letters."""

    word: str
    feedback: list[Mark]


class WordleObservation(Observation):
    #: Every guess so far, oldest first, so a policy needs no memory of its own.
    guesses: list[GuessRecord] = Field(default_factory=list)
    guesses_left: int
    word_length: int = 5
    #: What happened, in words, for text-only agents.
    message: str
    #: The answer, revealed once the episode is over; ``None`` while it runs.
    answer: str | None = None


class WordleState(State):
    answer: str = ""
    max_guesses: int = 6
    guesses: list[GuessRecord] = Field(default_factory=list)
    solved: bool = False
