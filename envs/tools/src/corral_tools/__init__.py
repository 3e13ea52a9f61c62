"""tools: an MCP tool environment: a calculator, notes and a searchable library, with seeded questions that need
them."""

from .client import AsyncToolsClient, ToolsClient
from .environment import ToolFailed, ToolsEnvironment
from .models import ToolCall, ToolsAction, ToolsObservation, ToolsState

__all__ = [
    "AsyncToolsClient",
    "ToolCall",
    "ToolFailed",
    "ToolsAction",
    "ToolsClient",
    "ToolsEnvironment",
    "ToolsObservation",
    "ToolsState",
]
