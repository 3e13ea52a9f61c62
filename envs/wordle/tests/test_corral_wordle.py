"""wordle's tests: the feedback rules, the word lists, conformance, reproducible seeds, a scripted policy that
solves every answer, truncation, invalid guesses, and real client sessions."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from corral.errors import InvalidAction
from corral.testing import InProcessClient, check_env, check_package, play_locally

from corral_wordle import WordleAction, WordleClient, WordleEnvironment, WordleObservation, score
from corral_wordle.policies import OPENER, scripted
from corral_wordle.policies import random as random_policy
from corral_wordle.words import ALLOWED, ANSWERS

ROOT = Path(__file__).resolve().parents[1]
G, Y, X = "green", "yellow", "gray"


def play(seed: int | None = None, **options: object) -> tuple[float, list[dict[str, object]]]:
    return play_locally(WordleEnvironment(), scripted, seed=seed, **options)


@pytest.mark.parametrize(("guess", "answer", "marks"), [
    ("crane", "crane", (G, G, G, G, G)),
    ("crane", "tiger", (X, Y, X, X, Y)),
    # One 'e' in the answer: the green claims it, so the other 'e' is gray.
    ("geese", "those", (X, X, X, G, G)),
    # Yellows go left to right while unclaimed copies remain.
    ("eerie", "steep", (Y, Y, X, X, X)),
    ("speed", "abide", (X, X, Y, X, Y)),
    # A green later in the word claims its letter before an earlier yellow can.
    ("lever", "hello", (Y, G, X, X, X)),
    ("allay", "alloy", (G, G, G, X, G)),
    ("mamma", "madam", (G, G, Y, X, Y)),
])
def test_feedback_handles_repeated_letters(guess: str, answer: str, marks: tuple[str, ...]) -> None:
    assert score(guess, answer) == marks


def test_word_lists() -> None:
    assert len(ANSWERS) >= 300
    assert len(ALLOWED) >= 2 * len(ANSWERS)
    assert list(ANSWERS) == sorted(set(ANSWERS))
    assert all(len(word) == 5 and word.isascii() and word.isalpha() and word.islower() for word in ALLOWED)
    assert set(ANSWERS) <= ALLOWED
    assert OPENER in ANSWERS


def test_conformance() -> None:
    check_env(WordleEnvironment, sample_action=WordleAction(guess="crane"))


def test_the_package_validates() -> None:
    report = check_package(ROOT, runtime=None)
    assert report.ok, str(report)


def test_same_seed_same_episode() -> None:
    assert play(3) == play(3)
    assert len({_answer(seed) for seed in range(20)}) > 10


def _answer(seed: int) -> str:
    env = WordleEnvironment()
    env.reset(seed=seed)
    return env.state.answer


def test_scripted_policy_solves_every_answer_within_six_guesses() -> None:
    for answer in ANSWERS:
        total, trace = play(answer=answer)
        assert total == 1.0, answer
        assert len(trace) - 1 <= 6, answer


def test_scripted_policy_reaches_the_maximum_reward_on_seeds() -> None:
    for seed in range(10):
        assert play(seed)[0] == 1.0


def test_solving_terminates_with_reward_and_reveals_the_answer() -> None:
    env = WordleEnvironment()
    first = env.reset(answer="crane").observation
    assert first.answer is None
    assert first.guesses_left == 6
    assert first.guesses == []
    result = env.step(WordleAction(guess="trace"))
    assert not result.done
    assert result.reward == 0.0
    assert result.observation.answer is None
    assert result.observation.guesses[0].feedback == [X, G, G, Y, G]
    result = env.step(WordleAction(guess=" CRANE "))
    assert result.terminated
    assert not result.truncated
    assert result.reward == 1.0
    assert result.observation.answer == "crane"
    assert env.state.solved
    assert [row.word for row in result.observation.guesses] == ["trace", "crane"]


def test_truncated_after_the_last_wrong_guess() -> None:
    env = WordleEnvironment()
    env.reset(answer="crane", max_guesses=6)
    for word in ("about", "below", "chair", "dream", "every"):
        result = env.step(WordleAction(guess=word))
        assert not result.done
    result = env.step(WordleAction(guess="flame"))
    assert result.truncated
    assert not result.terminated
    assert result.reward == 0.0
    assert result.observation.guesses_left == 0
    assert result.observation.answer == "crane"
    assert "crane" in result.observation.message


@pytest.mark.parametrize(("guess", "why"), [
    ("cran", "5 letters"), ("cranes", "5 letters"), ("cr4ne", "5 letters"), ("crané", "5 letters"),
    ("", "5 letters"), ("zzzzz", "not in the word list"),
])
def test_an_invalid_guess_is_refused_and_costs_nothing(guess: str, why: str) -> None:
    env = WordleEnvironment()
    env.reset(seed=1)
    with pytest.raises(InvalidAction, match=why) as caught:
        env.step(WordleAction(guess=guess))
    assert caught.value.errors[0]["loc"] == ["guess"]
    assert env.state.step_count == 0
    assert env.state.guesses == []


@pytest.mark.parametrize(("options", "why"), [
    ({"max_guesses": 0}, "max_guesses"), ({"max_guesses": "6"}, "max_guesses"), ({"answer": "qqqqq"}, "answer"),
    ({"answer": 12345}, "answer"), ({"max_guess": 6}, "unknown reset option"),
])
def test_bad_reset_options_are_refused(options: dict[str, object], why: str) -> None:
    with pytest.raises(InvalidAction, match=why):
        WordleEnvironment().reset(seed=0, **options)


def test_random_policy_makes_only_valid_new_guesses() -> None:
    env = WordleEnvironment()
    result = env.reset(seed=5, max_guesses=20)
    rng = random.Random(5)
    while not result.done:
        result = env.step(random_policy(result.observation, rng))
    words = [row.word for row in result.observation.guesses]
    assert len(words) == len(set(words))


def test_a_session_through_the_server() -> None:
    with InProcessClient(WordleEnvironment, observation_type=WordleObservation) as client:
        result = client.reset(seed=1)
        assert result.observation.guesses_left == 6
        with pytest.raises(InvalidAction, match="not in the word list"):
            client.step(WordleAction(guess="qwert"))
        result = client.step(WordleAction(guess="crane"))
        assert result.observation.guesses[0].word == "crane"
        assert result.observation.guesses_left == 5
        assert client.state().step_count == 1
        while not result.done:
            result = client.step(scripted(result.observation, random.Random(0)))
        assert result.terminated
        assert result.reward == 1.0


def test_the_typed_client_class_names_the_models() -> None:
    assert WordleClient.observation_type is WordleObservation
    assert WordleClient.action_type is WordleAction
