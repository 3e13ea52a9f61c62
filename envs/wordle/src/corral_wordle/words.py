"""The shipped word lists, read once from the package's data files.

``answers.txt`` holds the secret words an episode draws from (common English words, no plurals);
``guesses.txt`` holds further words accepted as guesses. Both are one lower-case word a line.
"""

from __future__ import annotations

from importlib import resources

WORD_LENGTH = 5


def _read(name: str) -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("data").joinpath(name).read_text(encoding="utf-8")
    return tuple(word for word in text.split() if word)


#: The words a seeded episode may pick as its answer, sorted.
ANSWERS: tuple[str, ...] = _read("answers.txt")
#: Every word accepted as a guess: the answers and the extra guess list.
ALLOWED: frozenset[str] = frozenset(ANSWERS) | frozenset(_read("guesses.txt"))
