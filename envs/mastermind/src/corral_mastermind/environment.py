"""The mastermind environment: crack a secret colour code from exact/partial peg feedback."""

from __future__ import annotations

import random
import uuid
from typing import Any

from corral import EnvInfo, Environment, StepResult
from corral.errors import InvalidAction

from .code import PALETTE, palette, score
from .models import GuessRecord, MastermindAction, MastermindObservation, MastermindState

#: Reset options: name -> (default, lowest, highest).
LIMITS = {"pegs": (4, 2, 6), "colors": (6, 2, len(PALETTE)), "max_guesses": (10, 1, 30)}


class MastermindEnvironment(Environment[MastermindAction, MastermindObservation, MastermindState]):
    """Reward 1.0 and ``terminated`` on guessing the code; ``truncated`` with 0.0 after ``max_guesses`` misses.

    The seed picks the code (colours may repeat). An invalid guess (wrong length, a letter outside the colours
    in play) raises :class:`~corral.errors.InvalidAction`: the client gets ``VALIDATION_ERROR``, the session
    stays open, and no guess or step is spent. Reset options: ``pegs`` (default 4, 2 to 6), ``colors``
    (default 6, 2 to 8), ``max_guesses`` (default 10, 1 to 30) and ``code`` (play a given code).
    """

    action_type = MastermindAction
    observation_type = MastermindObservation
    state_type = MastermindState
    info = EnvInfo(name="mastermind", version="0.1.0",
                   description="Crack a secret colour code with exact/partial peg feedback.", author="Corral")
    #: Every call is quick and never blocks, so it may run on the server's event loop.
    inline = True

    def __init__(self) -> None:
        self._state = MastermindState()

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **options: Any
    ) -> StepResult[MastermindObservation]:
        unknown = set(options) - {*LIMITS, "code"}
        if unknown:
            raise _invalid(f"unknown reset option(s) {', '.join(sorted(unknown))}; mastermind takes "
                           f"{', '.join(LIMITS)} and code", "options")
        pegs, colors, max_guesses = (_bounded(options, name) for name in LIMITS)
        code = options.get("code")
        if code is None:
            rng = random.Random(seed)
            code = "".join(rng.choice(palette(colors)) for _ in range(pegs))
        else:
            if not isinstance(code, str):
                raise _invalid(f"reset option code must be a string, not {code!r}", "code")
            code = _check(code, pegs, colors, "code")
        self._state = MastermindState(episode_id=episode_id or str(uuid.uuid4()), code=code, pegs=pegs,
                                      colors=colors, max_guesses=max_guesses)
        return StepResult(observation=self._observe(
            f"Guess the code of {pegs} pegs in colours {palette(colors)} (colours may repeat); you have "
            f"{_guesses(max_guesses)}."))

    def step(self, action: MastermindAction) -> StepResult[MastermindObservation]:
        state = self._state
        guess = _check(action.guess, state.pegs, state.colors, "guess")
        state.step_count += 1
        exact, partial = score(guess, state.code)
        state.guesses.append(GuessRecord(guess=guess, exact=exact, partial=partial))
        if guess == state.code:
            state.solved = True
            return StepResult(observation=self._observe(f"Cracked in {_guesses(len(state.guesses))}."), reward=1.0,
                              terminated=True)
        left = state.max_guesses - len(state.guesses)
        if left <= 0:
            return StepResult(observation=self._observe(f"Out of guesses; the code was {state.code}."),
                              reward=0.0, truncated=True)
        return StepResult(observation=self._observe(
            f"{guess}: {exact} exact, {partial} partial; {_guesses(left)} left."), reward=0.0)

    @property
    def state(self) -> MastermindState:
        return self._state

    def _observe(self, message: str) -> MastermindObservation:
        state = self._state
        over = state.solved or len(state.guesses) >= state.max_guesses
        return MastermindObservation(
            guesses=[record.model_copy() for record in state.guesses],
            guesses_left=state.max_guesses - len(state.guesses),
            pegs=state.pegs,
            colors=palette(state.colors),
            message=message,
            code=state.code if over else None,
        )


def _guesses(n: int) -> str:
    return f"{n} guess" if n == 1 else f"{n} guesses"


def _bounded(options: dict[str, Any], name: str) -> int:
    default, low, high = LIMITS[name]
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(f"reset option {name} must be an integer from {low} to {high}, not {value!r}", name)
    return value


def _check(raw: str, pegs: int, colors: int, field: str) -> str:
    text = "".join(raw.split()).upper()
    letters = palette(colors)
    if len(text) != pegs or any(letter not in letters for letter in text):
        spent = "; no guess was spent" if field == "guess" else ""
        raise _invalid(f"a {field} must be {pegs} letters from {letters}, not {raw!r}{spent}", field)
    return text


def _invalid(message: str, field: str) -> InvalidAction:
    return InvalidAction(message, details={"errors": [{"type": "value_error", "loc": [field], "msg": message}]})
