"""Policies for `corral run --policy NAME` and `corral validate`: ``(observation, rng) -> action``.

``scripted`` answers every question: it reads the question against the task patterns, calls the tools the
task needs (in order, seeing how far it got from the observation's ``history``) and answers from their
results. ``random`` calls random tools and then guesses.
"""

from __future__ import annotations

from random import Random
from typing import Any

from .models import ToolsAction, ToolsObservation
from .tasks import ARITHMETIC, LOOKUP, RECALL, STORE, YEARS, pattern

_PATTERNS = {name: pattern(template) for name, template in
             (("arithmetic", ARITHMETIC), ("lookup", LOOKUP), ("years", YEARS), ("recall", RECALL), ("store", STORE))}


def scripted(observation: ToolsObservation, rng: Random) -> ToolsAction:
    done = [call for call in observation.history if call.error is None]
    for kind, regex in _PATTERNS.items():
        match = regex.match(observation.question)
        if match is not None:
            return _PLANS[kind](match.groupdict(), done)
    return ToolsAction(answer="I do not know")


def random(observation: ToolsObservation, rng: Random) -> ToolsAction:
    if rng.random() < 0.25:
        return ToolsAction(answer=str(rng.randint(0, 2000)))
    name = rng.choice(observation.tools)
    arguments: dict[str, Any] = {
        "calculator": {"expression": f"{rng.randint(1, 99)} * {rng.randint(1, 99)}"},
        "search": {"query": rng.choice(observation.question.split())},
        "note_set": {"key": "scratch", "value": str(rng.randint(0, 99))},
        "note_get": {"key": "scratch"},
        "note_delete": {"key": "scratch"},
    }.get(name, {})
    return ToolsAction(tool=name, arguments=arguments)


def _fact(calls: list[Any], phrase: str) -> Any:
    """The fact that ``phrase`` ("LABEL of TITLE") names, from the search results seen so far, or None.

    Labels and titles may themselves hold "of" (number of locks, Isle of Gannet), so the phrase is matched
    against each hit's title and facts rather than split.
    """
    for call in calls:
        if call.tool == "search":
            for hit in call.result:
                for label, value in hit["facts"].items():
                    if phrase == f"{label} of {hit['title']}":
                        return value
    return None


def _find(phrase: str) -> ToolsAction:
    return ToolsAction(tool="search", arguments={"query": phrase, "k": 5})


def _arithmetic(fields: dict[str, str], done: list[Any]) -> ToolsAction:
    if not done:
        return ToolsAction(tool="calculator", arguments={"expression": fields["expression"]})
    return ToolsAction(answer=str(done[-1].result))


def _lookup(fields: dict[str, str], done: list[Any]) -> ToolsAction:
    value = _fact(done, f"{fields['label']} of {fields['title']}")
    if value is None:
        return _find(f"{fields['label']} of {fields['title']}")
    return ToolsAction(answer=str(value))


def _years(fields: dict[str, str], done: list[Any]) -> ToolsAction:
    phrases = f"{fields['label_a']} of {fields['title_a']}", f"{fields['label_b']} of {fields['title_b']}"
    first, second = (_fact(done, phrase) for phrase in phrases)
    if first is None:
        return _find(phrases[0])
    if second is None:
        return _find(phrases[1])
    if done[-1].tool != "calculator":
        return ToolsAction(tool="calculator", arguments={"expression": f"abs({first} - {second})"})
    return ToolsAction(answer=str(done[-1].result))


def _recall(fields: dict[str, str], done: list[Any]) -> ToolsAction:
    if not done:
        return ToolsAction(tool="note_get", arguments={"key": fields["key"]})
    return ToolsAction(answer=str(done[-1].result))


def _store(fields: dict[str, str], done: list[Any]) -> ToolsAction:
    value = _fact(done, f"{fields['label']} of {fields['title']}")
    if value is None:
        return _find(f"{fields['label']} of {fields['title']}")
    if done[-1].tool != "note_set":
        return ToolsAction(tool="note_set", arguments={"key": fields["key"], "value": str(value)})
    return ToolsAction(answer=str(value))


_PLANS = {"arithmetic": _arithmetic, "lookup": _lookup, "years": _years, "recall": _recall, "store": _store}
