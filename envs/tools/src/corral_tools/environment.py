"""The tools environment: answer a seeded question with a calculator, notes and a searchable library.

The tools are MCP tools (``POST /mcp`` and ``{"type": "mcp"}`` frames: ``tools/list``, ``tools/call``) and
step actions too (``{"tool": "calculator", "arguments": {...}}``, then ``{"answer": "..."}``), so an MCP agent
and a plain reset/step trainer play the same episodes.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from corral import EnvInfo, Environment, StepResult, tool
from corral.errors import InvalidAction

from .calculator import CalculatorError, Number, evaluate
from .library import library
from .models import ToolCall, ToolsAction, ToolsObservation, ToolsState
from .tasks import KINDS, Task, make_task, same_answer

MAX_NOTES = 100
MAX_KEY = 64
MAX_VALUE = 1000
MAX_HITS = 10


class ToolFailed(ValueError):
    """A tool could not do what was asked (bad expression, missing note, ...); the agent reads why."""


class ToolsEnvironment(Environment[ToolsAction, ToolsObservation, ToolsState]):
    """One question per episode; reward 1.0 for a right final answer, 0.0 for a wrong one (``terminated``).

    A step calls one tool or gives the answer. A tool call made by a step uses one of ``max_steps`` steps
    and lands in the observation (``result`` or ``error``, and ``history``); a tool that fails (a bad
    expression, a missing note) is an ordinary step whose ``error`` says why. A step naming an unknown
    tool, or with arguments that do not fit the tool, raises :class:`~corral.errors.InvalidAction` and
    changes nothing. Calls over MCP use the same tools on the same session (notes are shared) but are not
    steps: they cost nothing and are not in ``history``. ``store`` tasks also need the answer saved as a
    note under the key the question names. ``truncated`` with 0.0 after ``max_steps`` steps unanswered.

    Notes belong to the session and are cleared by ``reset``. Reset options: ``kind`` (one of
    ``arithmetic``, ``lookup``, ``years``, ``recall``, ``store``; default: the seed picks) and ``max_steps``
    (default 10). The seed picks the question, so the same seed and actions replay the same episode.
    """

    action_type = ToolsAction
    observation_type = ToolsObservation
    state_type = ToolsState
    info = EnvInfo(
        name="tools",
        version="0.1.0",
        description="An MCP tool environment: a calculator, notes and a searchable library, with seeded "
        "questions that need them.",
    )
    #: Every tool is quick and never blocks, so calls may run on the server's event loop.
    inline = True

    def __init__(self) -> None:
        self._state = ToolsState()
        self._task = Task("", "", "")
        self._history: list[ToolCall] = []

    # -- the tools ---------------------------------------------------------------------------------

    @tool
    def calculator(self, expression: str) -> Number:
        """Evaluate an arithmetic expression: + - * / // % and ** (or ^), parentheses, sqrt, abs, round, floor,
        ceil, min, max, log, exp, pi and e. Example: "(17 + 5) * sqrt(49)".
        """
        try:
            return evaluate(expression)
        except CalculatorError as exc:
            raise ToolFailed(str(exc)) from exc

    @tool
    def search(self, query: str, k: int = 3) -> list[dict[str, Any]]:
        """Search the library by keywords; returns up to k documents (best first) with their text and facts."""
        if not 1 <= k <= MAX_HITS:
            raise ToolFailed(f"k must be between 1 and {MAX_HITS}, got {k}")
        hits = library().search(query, k)
        if not hits:
            raise ToolFailed(f"nothing in the library matches {query!r}; try other keywords (names, places)")
        return hits

    @tool
    def note_set(self, key: str, value: str) -> dict[str, str]:
        """Save a note: value under key (replacing any note already there)."""
        notes = self._state.notes
        if not 1 <= len(key) <= MAX_KEY:
            raise ToolFailed(f"a note key has 1 to {MAX_KEY} characters, got {len(key)}")
        if len(value) > MAX_VALUE:
            raise ToolFailed(f"a note holds at most {MAX_VALUE} characters, got {len(value)}")
        if key not in notes and len(notes) >= MAX_NOTES:
            raise ToolFailed(f"the notes are full ({MAX_NOTES}); delete one first")
        notes[key] = value
        return {"key": key, "value": value}

    @tool
    def note_get(self, key: str) -> str:
        """Read the note saved under key."""
        notes = self._state.notes
        if key not in notes:
            known = ", ".join(repr(k) for k in sorted(notes)) or "none yet"
            raise ToolFailed(f"no note under {key!r}; keys: {known}")
        return notes[key]

    @tool
    def note_list(self) -> list[str]:
        """The keys of every note, sorted."""
        return sorted(self._state.notes)

    @tool
    def note_delete(self, key: str) -> dict[str, str]:
        """Delete the note saved under key."""
        value = self.note_get(key)
        del self._state.notes[key]
        return {"deleted": key, "value": value}

    # -- the episode -------------------------------------------------------------------------------

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **options: Any
    ) -> StepResult[ToolsObservation]:
        unknown = set(options) - {"kind", "max_steps"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; expected kind, max_steps")
        kind = options.get("kind")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"reset option 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
        max_steps = options.get("max_steps", 10)
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ValueError(f"reset option 'max_steps' must be a whole number of at least 1, got {max_steps!r}")
        self._task = make_task(random.Random(seed), kind)
        self._history = []
        self._state = ToolsState(episode_id=episode_id or str(uuid.uuid4()), kind=self._task.kind,
                                 question=self._task.question, max_steps=max_steps, notes=dict(self._task.notes))
        return StepResult(observation=self._observe(), info={"kind": self._task.kind})

    def step(self, action: ToolsAction) -> StepResult[ToolsObservation]:
        state = self._state
        if action.answer is not None:
            state.step_count += 1
            state.answer = action.answer
            state.correct = self._judge(action.answer)
            return StepResult(observation=self._observe(), reward=1.0 if state.correct else 0.0, terminated=True,
                              info={"kind": self._task.kind})
        assert action.tool is not None  # the action's validator allows nothing else
        specs = type(self).tool_specs()
        spec = specs.get(action.tool)
        if spec is None:
            raise InvalidAction(f"unknown tool {action.tool!r}; available: {', '.join(sorted(specs))}",
                                details={"errors": [{"type": "unknown_tool", "loc": ["tool"],
                                                     "msg": f"unknown tool {action.tool!r}", "input": action.tool}]})
        arguments = spec.validate(action.arguments)
        state.step_count += 1
        call = ToolCall(tool=action.tool, arguments=action.arguments)
        try:
            call.result = getattr(self, spec.method)(**arguments)
        except ToolFailed as exc:
            call.error = str(exc)
        self._history.append(call)
        truncated = state.step_count >= state.max_steps
        return StepResult(observation=self._observe(), reward=0.0, truncated=truncated,
                          info={"kind": self._task.kind})

    @property
    def state(self) -> ToolsState:
        return self._state

    def _judge(self, answer: str) -> bool:
        task = self._task
        if not same_answer(answer, task.answer):
            return False
        if task.note_key is None:
            return True
        saved = self._state.notes.get(task.note_key)
        return saved is not None and same_answer(saved, task.answer)

    def _observe(self) -> ToolsObservation:
        state = self._state
        last = self._history[-1] if self._history else None
        over = state.answer is not None or state.step_count >= state.max_steps
        return ToolsObservation(
            question=state.question,
            tools=sorted(type(self).tool_specs()),
            result=last.result if last else None,
            error=last.error if last else None,
            history=[call.model_copy() for call in self._history],
            steps_left=state.max_steps - state.step_count,
            answer=state.answer,
            correct=state.correct,
            expected=self._task.answer if over else None,
        )
