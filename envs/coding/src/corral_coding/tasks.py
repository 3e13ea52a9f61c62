"""The task set (``tasks.json``, shipped with the package) and the host-side grading of a run.

A task asks either for a function, which the tests call with the given arguments, or for a program, judged
by what it prints. Expected values live here, on the host: the sandbox only ever sees the arguments and
reports what the function returned, and :func:`grade` compares.
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .executor import Execution
from .models import CaseResult


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    args: list[Any]
    expected: Any


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    prompt: str
    signature: str = ""
    function: str | None = None
    tests: list[Case] = Field(default_factory=list)
    expected_stdout: str | None = None
    #: A reference solution (for the scripted policy and the task set's own tests; never shown to the agent).
    solution: str

    @property
    def total(self) -> int:
        return len(self.tests) + (self.expected_stdout is not None)

    def call(self, case: Case) -> str:
        """How a test names itself: the call it makes, shortened."""
        text = f"{self.function}({', '.join(repr(a) for a in case.args)})"
        return text if len(text) <= 80 else text[:77] + "..."


@functools.cache
def load_tasks() -> tuple[Task, ...]:
    """The shipped tasks, in their file's order (a seed picks ``tasks[seed % len(tasks)]``)."""
    data = json.loads(resources.files(__package__).joinpath("tasks.json").read_text(encoding="utf-8"))
    return tuple(Task.model_validate(item) for item in data["tasks"])


def grade(task: Task, run: Execution, *, reveal_expected: bool = False) -> list[CaseResult]:
    """Each test's verdict for ``run`` of a submission to ``task``."""
    cases: list[CaseResult] = []
    results = run.results()
    for index, case in enumerate(task.tests):
        name = task.call(case)
        result = results.get(index)
        if result is None:
            cases.append(CaseResult(name=name, passed=False, detail="not run: " + _why_not_run(task, run)))
        elif "error" in result:
            message = str(result.get("message") or "")
            cases.append(CaseResult(name=name, passed=False,
                                    detail=f"raised {result['error']}" + (f": {message}" if message else "")))
        elif same(result.get("value"), case.expected):
            cases.append(CaseResult(name=name, passed=True, detail="passed"))
        else:
            detail = f"returned {_short(result.get('value'))}, which is wrong"
            if reveal_expected:
                detail += f"; expected {_short(case.expected)}"
            cases.append(CaseResult(name=name, passed=False, detail=detail))
    if task.expected_stdout is not None:
        cases.append(_grade_stdout(task.expected_stdout, run, reveal_expected))
    return cases


def same(value: Any, expected: Any) -> bool:
    """JSON equality, strict about types (True is not 1), with floats equal to within 1e-9."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(value) is type(expected) and value == expected
    if isinstance(expected, (int, float)) and isinstance(value, (int, float)):
        if isinstance(expected, float) or isinstance(value, float):
            return math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-9)
        return value == expected
    if isinstance(expected, list):
        return (isinstance(value, list) and len(value) == len(expected)
                and all(same(v, e) for v, e in zip(value, expected, strict=False)))
    if isinstance(expected, dict):
        return (isinstance(value, dict) and value.keys() == expected.keys()
                and all(same(value[k], expected[k]) for k in expected))
    return type(value) is type(expected) and bool(value == expected)


def _grade_stdout(expected: str, run: Execution, reveal: bool) -> CaseResult:
    if run.timed_out or run.exit_code != 0:
        why = "it went past its time limit" if run.timed_out else f"it exited with {run.exit_code}"
        return CaseResult(name="stdout", passed=False, detail=f"the program did not finish cleanly: {why}")
    got, want = _lines(run.stdout), _lines(expected)
    if not run.output_truncated and got == want:
        return CaseResult(name="stdout", passed=True, detail="passed")
    line = next((i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), min(len(got), len(want)))
    detail = f"the output differs from the expected output at line {line + 1}"
    if reveal:
        detail += f"; expected {want[line]!r}" if line < len(want) else "; expected no more lines"
    return CaseResult(name="stdout", passed=False, detail=detail)


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip().splitlines()]


def _why_not_run(task: Task, run: Execution) -> str:
    if (failed := run.event("load_error")) is not None:
        return f"the module raised {failed.get('error')} before the tests ran (see stderr)"
    if (exited := run.event("exit")) is not None:
        return f"the module exited (code {exited.get('code')}) before the tests ran"
    if run.event("missing") is not None:
        return f"there is no function {task.function!r}; define `{task.signature}`"
    if run.timed_out:
        return "the program went past its time limit"
    if run.limit:
        return f"the program went past its {run.limit}"
    return f"the program ended (exit code {run.exit_code}) before this test finished"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."
