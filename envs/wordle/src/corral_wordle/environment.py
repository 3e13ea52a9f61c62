"""The wordle environment: guess a five-letter word in six tries with green/yellow/gray feedback."""

from __future__ import annotations

import random
import uuid
from typing import Any

from corral import EnvInfo, Environment, StepResult
from corral.errors import InvalidAction

from .feedback import score
from .models import GuessRecord, WordleAction, WordleObservation, WordleState
from .words import ALLOWED, ANSWERS, WORD_LENGTH

MAX_GUESSES_LIMIT = 20


class WordleEnvironment(Environment[WordleAction, WordleObservation, WordleState]):
    """Reward 1.0 and ``terminated`` on guessing the word; ``truncated`` with 0.0 after ``max_guesses`` misses.

    The seed picks the answer from the shipped answer list. An invalid guess (not five letters, not a word in
    the allowed list) raises :class:`~corral.errors.InvalidAction`: the client gets ``VALIDATION_ERROR``, the
    session stays open, and no guess or step is spent. Reset options: ``max_guesses`` (default 6, at most
    20) and ``answer`` (play a given word from the allowed list instead of a seeded one).
    """

    action_type = WordleAction
    observation_type = WordleObservation
    state_type = WordleState
    info = EnvInfo(name="wordle", version="0.1.0",
                   description="Guess a five-letter word in six tries with green/yellow/gray letter feedback.",
                   author="Corral")
    #: Every call is quick and never blocks, so it may run on the server's event loop.
    inline = True

    def __init__(self) -> None:
        self._state = WordleState()

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **options: Any
    ) -> StepResult[WordleObservation]:
        unknown = set(options) - {"max_guesses", "answer"}
        if unknown:
            raise _invalid(f"unknown reset option(s) {', '.join(sorted(unknown))}; wordle takes max_guesses "
                           "and answer", "options")
        max_guesses = options.get("max_guesses", 6)
        if isinstance(max_guesses, bool) or not isinstance(max_guesses, int) or \
                not 1 <= max_guesses <= MAX_GUESSES_LIMIT:
            raise _invalid(f"reset option max_guesses must be an integer from 1 to {MAX_GUESSES_LIMIT}, "
                           f"not {max_guesses!r}", "max_guesses")
        answer = options.get("answer")
        if answer is None:
            answer = random.Random(seed).choice(ANSWERS)
        elif not isinstance(answer, str) or answer.strip().lower() not in ALLOWED:
            raise _invalid(f"reset option answer must be a word from the allowed list, not {answer!r}", "answer")
        self._state = WordleState(episode_id=episode_id or str(uuid.uuid4()), answer=answer.strip().lower(),
                                  max_guesses=max_guesses)
        return StepResult(observation=self._observe(
            f"Guess the {WORD_LENGTH}-letter word; you have {_guesses(max_guesses)}."))

    def step(self, action: WordleAction) -> StepResult[WordleObservation]:
        state = self._state
        guess = _check_guess(action.guess)
        state.step_count += 1
        state.guesses.append(GuessRecord(word=guess, feedback=list(score(guess, state.answer))))
        if guess == state.answer:
            state.solved = True
            return StepResult(observation=self._observe(f"Solved in {_guesses(len(state.guesses))}."),
                              reward=1.0, terminated=True)
        left = state.max_guesses - len(state.guesses)
        if left <= 0:
            return StepResult(observation=self._observe(f"Out of guesses; the word was {state.answer!r}."),
                              reward=0.0, truncated=True)
        return StepResult(observation=self._observe(f"{guess!r} is not the word; {_guesses(left)} left."),
                          reward=0.0)

    @property
    def state(self) -> WordleState:
        return self._state

    def _observe(self, message: str) -> WordleObservation:
        state = self._state
        over = state.solved or len(state.guesses) >= state.max_guesses
        return WordleObservation(
            guesses=[record.model_copy(deep=True) for record in state.guesses],
            guesses_left=state.max_guesses - len(state.guesses),
            message=message,
            answer=state.answer if over else None,
        )


def _guesses(n: int) -> str:
    return f"{n} guess" if n == 1 else f"{n} guesses"


def _check_guess(raw: str) -> str:
    guess = raw.strip().lower()
    if len(guess) != WORD_LENGTH or not guess.isascii() or not guess.isalpha():
        raise _invalid(f"a guess must be {WORD_LENGTH} letters a-z, not {raw!r}; no guess was spent", "guess")
    if guess not in ALLOWED:
        raise _invalid(f"{guess!r} is not in the word list; no guess was spent, try another word", "guess")
    return guess


def _invalid(message: str, field: str) -> InvalidAction:
    return InvalidAction(message, details={"errors": [{"type": "value_error", "loc": [field], "msg": message}]})
