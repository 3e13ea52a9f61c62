"""Tools an environment exposes to the agent over MCP (``tools/list``, ``tools/call``).

Mark an environment method with :func:`tool`; its signature becomes the tool's input schema. Episode
control (``reset``, ``step``, ``state``, ``close``) belongs to the orchestrator and can never be a tool.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .errors import InvalidAction

RESERVED_TOOL_NAMES = frozenset({"reset", "step", "state", "close"})

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__corral_tool__"


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the agent sees it, plus the model that validates its arguments."""

    name: str
    description: str
    arguments: type[BaseModel]
    method: str

    @property
    def input_schema(self) -> dict[str, Any]:
        return self.arguments.model_json_schema()

    def listing(self) -> dict[str, Any]:
        schema = self.input_schema
        return {"name": self.name, "description": self.description, "input_schema": schema, "inputSchema": schema}

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(self.arguments.model_validate(arguments))
        except ValidationError as exc:
            raise InvalidAction(
                f"invalid arguments for tool {self.name!r}", details={"errors": exc.errors(include_url=False)}
            ) from exc


def tool(fn: F | None = None, *, name: str | None = None) -> Any:
    """Mark an environment method as a tool. Usable bare (``@tool``) or with a name (``@tool(name=...)``)."""

    def mark(f: F) -> F:
        tool_name = name or f.__name__
        if tool_name in RESERVED_TOOL_NAMES:
            raise ValueError(
                f"tool name {tool_name!r} is reserved for episode control; rename the tool "
                f"(reserved: {', '.join(sorted(RESERVED_TOOL_NAMES))})"
            )
        setattr(f, _MARK, tool_name)
        return f

    return mark(fn) if fn is not None else mark


def collect_tools(cls: type) -> dict[str, ToolSpec]:
    """Find the methods of ``cls`` marked with :func:`tool` and describe each one."""
    specs: dict[str, ToolSpec] = {}
    for attr in dir(cls):
        method = getattr(cls, attr, None)
        tool_name = getattr(method, _MARK, None)
        if tool_name is None or method is None:
            continue
        hints = get_type_hints(method)
        fields: dict[str, Any] = {}
        for param in list(inspect.signature(method).parameters.values())[1:]:
            annotation = hints.get(param.name, Any)
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, default)
        model = create_model(
            f"{cls.__name__}_{tool_name}_args", __config__=ConfigDict(extra="forbid"), **fields
        )
        doc = inspect.getdoc(method) or ""
        specs[tool_name] = ToolSpec(tool_name, doc.split("\n\n")[0], model, attr)
    return specs
