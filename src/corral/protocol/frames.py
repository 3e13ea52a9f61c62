"""Frame shapes shared by server and client: message types, error codes, and the observation envelope.

The exact wire format is documented in ``docs/protocol.md``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from ..types import StepResult

PROTOCOL_VERSION = "corral/1"

#: Handshake headers of corral/1 (HTTP headers are case-insensitive; these are the canonical spellings).
HEADER_SESSION = "X-Session-Id"
HEADER_RESUME_SESSION = "X-Corral-Resume-Session"
HEADER_RESUME_TOKEN = "X-Corral-Resume-Token"
HEADER_OPEN = "X-Corral-Open"
HEADER_WAIT = "X-Corral-Admission-Wait"


class Dialect(str, Enum):
    COMPAT = "compat"
    CORRAL = "corral/1"


class ErrorCode(str, Enum):
    # The session stays open.
    INVALID_JSON = "INVALID_JSON"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    EXECUTION_ERROR = "EXECUTION_ERROR"
    FRAME_TOO_LARGE = "FRAME_TOO_LARGE"
    RATE_LIMITED = "RATE_LIMITED"
    RESET_NEEDED = "RESET_NEEDED"
    SEED_NOT_SUPPORTED = "SEED_NOT_SUPPORTED"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    RESUME_REJECTED = "RESUME_REJECTED"
    # The session is closed.
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    CAPACITY_REACHED = "CAPACITY_REACHED"
    FACTORY_ERROR = "FACTORY_ERROR"
    SESSION_ERROR = "SESSION_ERROR"
    UNAUTHORIZED = "UNAUTHORIZED"


def error_frame(code: str, message: str, frame_id: Any = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"message": message, "code": code, **extra}
    frame: dict[str, Any] = {"type": "error", "data": data}
    if frame_id is not None:
        frame["id"] = frame_id
    return frame


def envelope(result: StepResult[Any], dialect: Dialect, mode: str = "json") -> dict[str, Any]:
    """The ``data`` of an observation frame (and the body of HTTP ``/reset`` and ``/step``).

    compat: ``{"observation", "reward", "done"}``, with ``metadata`` taken out of the observation.
    corral/1 adds ``terminated``, ``truncated`` and ``info`` and keeps ``metadata``.
    """
    obs = result.observation.model_dump(mode=mode)
    done = result.terminated or result.truncated
    if dialect is Dialect.COMPAT:
        obs.pop("metadata", None)
        return {"observation": obs, "reward": result.reward, "done": done}
    return {
        "observation": obs,
        "reward": result.reward,
        "done": done,
        "terminated": result.terminated,
        "truncated": result.truncated,
        "info": result.info,
    }
