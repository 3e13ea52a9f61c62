"""What goes over the wire: a tool call or a final answer, what the agent sees, the episode's state."""

from __future__ import annotations

from typing import Any

from corral import Action, Observation, State
from corral.tools import RESERVED_TOOL_NAMES
from pydantic import BaseModel, Field, model_validator


class ToolsAction(Action):
    """Exactly one of ``tool`` (with its ``arguments``) or ``answer``."""

    tool: str | None = Field(default=None, description="The tool to call, e.g. 'calculator'.",
                             examples=["calculator"])
    arguments: dict[str, Any] = Field(default_factory=dict, description="The tool's arguments.",
                                      examples=[{"expression": "6 * 7"}])
    answer: str | None = Field(default=None, max_length=1000, description="The final answer; ends the episode.")

    @model_validator(mode="after")
    def _one_of(self) -> ToolsAction:
        if (self.tool is None) == (self.answer is None):
            raise ValueError("give exactly one of 'tool' (with 'arguments') or 'answer'")
        if self.tool in RESERVED_TOOL_NAMES:
            raise ValueError(f"{self.tool!r} is episode control, not a tool: the orchestrator resets and steps, "
                             "never the agent")
        if self.answer is not None and self.arguments:
            raise ValueError("'arguments' go with 'tool'; an answer takes none")
        return self


class ToolCall(BaseModel):
    """One tool call made through a step, and what came of it."""

    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    error: str | None = None


class ToolsObservation(Observation):
    question: str = Field(description="The task; answer it with {'answer': ...} once the tools have told you.")
    tools: list[str] = Field(description="The tools a step may call (their schemas: MCP tools/list).")
    result: Any = Field(default=None, description="What the last tool call returned.")
    error: str | None = Field(default=None, description="Why the last tool call failed.")
    history: list[ToolCall] = Field(default_factory=list, description="Every tool call of the episode made by a step.")
    steps_left: int
    answer: str | None = Field(default=None, description="The answer given, once the episode is over.")
    correct: bool | None = Field(default=None, description="Whether the answer earned the reward.")
    expected: str | None = Field(default=None, description="The right answer, shown once the episode is over.")


class ToolsState(State):
    kind: str = ""
    question: str = ""
    max_steps: int = 10
    notes: dict[str, str] = Field(default_factory=dict)
    answer: str | None = None
    correct: bool | None = None
