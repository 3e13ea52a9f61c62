"""What goes over the wire: the code the agent submits, what it sees back, the episode's state."""

from __future__ import annotations

from corral import Action, Observation, State
from pydantic import BaseModel, ConfigDict, Field

#: The longest submission accepted, in characters.
MAX_CODE = 65536


class CodingAction(Action):
    code: str = Field(max_length=MAX_CODE, examples=["print('hello')"],
                      description="A complete Python module. For a task with a function, define it; the tests "
                                  "call it after the module has run.")


class CaseResult(BaseModel):
    """One test: ``name`` is the call it makes (or ``stdout`` for a task judged by its output)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    passed: bool
    detail: str


class CodingObservation(Observation):
    task_id: str
    prompt: str
    #: The function to write (``def name(args) -> type``); empty for a task judged by what it prints.
    signature: str
    attempt: int = Field(description="Submissions so far in this episode.")
    attempts_left: int
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = Field(default=None, description="None before a run and when the time limit killed "
                                  "it; -N when signal N ended it.")
    timed_out: bool = False
    limit: str | None = Field(default=None, description="The limit the run went past, e.g. 'time limit 5 s' or "
                              "'memory limit 256 MiB'; 'closed' when the environment was closed during the run.")
    output_truncated: bool = False
    tests: list[CaseResult] = Field(default_factory=list)
    tests_passed: int = 0
    tests_total: int
    best_passed: int = Field(default=0, description="The most tests any submission of this episode passed.")


class CodingState(State):
    task_id: str = ""
    attempts: int = 0
    max_attempts: int = 5
    best_passed: int = 0
    tests_total: int = 0
    solved: bool = False
