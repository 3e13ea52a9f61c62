"""Seeded questions that need the tools, and how an answer is judged.

Five kinds: ``arithmetic`` (the calculator), ``lookup`` (a fact from the library), ``years`` (two dated facts
and a subtraction), ``recall`` (a note stored before the episode starts) and ``store`` (look a fact up, save it
as a note, answer with it). The question texts follow the patterns below, which the scripted policy reads.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from .calculator import evaluate
from .library import library

KINDS = ("arithmetic", "lookup", "years", "recall", "store")

ARITHMETIC = "Use the calculator: what is {expression}?"
LOOKUP = "According to the library, what is the {label} of {title}?"
YEARS = ("According to the library, how many years separate the {label_a} of {title_a} "
         "and the {label_b} of {title_b}?")
RECALL = "Your notes hold a code under the key '{key}'. What is it?"
STORE = ("Look up the {label} of {title} in the library, save it in your notes under the key '{key}', "
         "and answer with it.")


def pattern(template: str) -> re.Pattern[str]:
    """A regular expression matching ``template``'s questions, one named group per field."""
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts))
    return re.compile(f"^{regex}$")


_EXPRESSIONS = (
    "{a} * {b} + {c}",
    "({a} + {b}) * {c} - {d}",
    "{a} * {b} - {c} * {d}",
    "({a} - {b}) * ({c} + {d})",
    "{p} / {q} + {c}",
    "sqrt({s}) * {b} - {c}",
    "{a} ** 2 - {b} * {c}",
)
_NOTE_KEYS = ("locker", "gate", "safe", "wifi", "bike-lock", "archive", "vault", "garage")


@dataclass(frozen=True)
class Task:
    kind: str
    question: str
    answer: str
    #: The note the answer must also be saved under (``store`` tasks).
    note_key: str | None = None
    #: Notes present when the episode starts (``recall`` tasks).
    notes: dict[str, str] = field(default_factory=dict)


def make_task(rng: random.Random, kind: str | None = None) -> Task:
    """A task of ``kind`` (the generator picks one when None), every choice drawn from ``rng``."""
    kind = kind or rng.choice(KINDS)
    docs = library().documents
    if kind == "arithmetic":
        a, b, c, d = (rng.randint(2, 99) for _ in range(4))
        q = rng.randint(2, 19)
        values = {"a": a, "b": b, "c": c, "d": d, "q": q, "p": q * rng.randint(2, 60), "s": rng.randint(2, 40) ** 2}
        expression = rng.choice(_EXPRESSIONS).format(**values)
        return Task(kind, ARITHMETIC.format(expression=expression), str(evaluate(expression)))
    if kind == "lookup":
        doc = rng.choice(docs)
        label = rng.choice(sorted(doc.facts))
        return Task(kind, LOOKUP.format(label=label, title=doc.title), str(doc.facts[label]))
    if kind == "years":
        first, second = rng.sample(docs, 2)
        question = YEARS.format(label_a=first.year_label, title_a=first.title, label_b=second.year_label,
                                title_b=second.title)
        return Task(kind, question, str(abs(first.facts[first.year_label] - second.facts[second.year_label])))
    if kind == "recall":
        keys = [f"{name}-{rng.randint(1, 9)}" for name in rng.sample(_NOTE_KEYS, 4)]
        notes = {key: f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.randint(1, 9)}-{rng.randint(1000, 9999)}"
                 for key in keys}
        key = rng.choice(keys)
        return Task(kind, RECALL.format(key=key), notes[key], notes=notes)
    if kind == "store":
        doc = rng.choice(docs)
        label = rng.choice(sorted(doc.facts))
        key = f"{doc.id}-{label.replace(' ', '-')}"
        return Task(kind, STORE.format(label=label, title=doc.title, key=key), str(doc.facts[label]), note_key=key)
    raise ValueError(f"unknown task kind {kind!r}; expected one of {', '.join(KINDS)}")


def normalize(text: str) -> str:
    """Case, surrounding quotes and spaces, a final full stop and inner runs of spaces do not matter."""
    text = " ".join(text.strip().strip("\"'").split()).lower()
    return text[:-1] if text.endswith(".") else text


def same_answer(given: str, expected: str) -> bool:
    """Whether ``given`` answers with ``expected``: numbers by value (``12,400`` is 12400), text normalized."""
    given, expected = normalize(given), normalize(expected)
    numbers = [_number(given), _number(expected)]
    if numbers[0] is not None and numbers[1] is not None:
        return math.isclose(numbers[0], numbers[1], rel_tol=1e-6, abs_tol=1e-9)
    return given == expected


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace(" ", ""))
    except ValueError:
        return None
