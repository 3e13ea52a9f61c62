"""What goes over the wire: the guess the agent sends, the board it sees, the episode's state."""

from __future__ import annotations

from corral import Action, Observation, State
from pydantic import BaseModel, Field


class MastermindAction(Action):
    guess: str = Field(max_length=64, description="One colour letter per peg, such as 'AABC'; case and spaces "
                       "are ignored.", examples=["AABB"])


class GuessRecord(BaseModel):
    """One row of the board: the guess and how it scored."""

    guess: str
    #: Pegs of the right colour in the right place.
    exact: int
    #: Further pegs of a right colour in the wrong place.
    partial: int


class MastermindObservation(Observation):
    #: Every guess so far, oldest first, so a policy needs no memory of its own.
    guesses: list[GuessRecord] = Field(default_factory=list)
    guesses_left: int
    pegs: int
    #: The colour letters in play, such as ``ABCDEF``; colours may repeat in the code.
    colors: str
    #: What happened, in words, for text-only agents.
    message: str
    #: The code, revealed once the episode is over; ``None`` while it runs.
    code: str | None = None


class MastermindState(State):
    code: str = ""
    pegs: int = 4
    colors: int = 6
    max_guesses: int = 10
    guesses: list[GuessRecord] = Field(default_factory=list)
    solved: bool = False
