"""One exception hierarchy for everything Corral raises, classified by whose fault it is.

Every error that crosses the wire has a ``code`` (see :class:`corral.protocol.ErrorCode`); the
client turns an error frame back into the matching class with :func:`error_for_code`.
"""

from __future__ import annotations

from typing import Any


class CorralError(Exception):
    """Base class of every Corral error."""

    code: str = "INTERNAL_ERROR"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


# -- the caller's mistake -------------------------------------------------------------------------


class UsageError(CorralError):
    """The caller did something the API does not allow; fix the calling code."""

    code = "BAD_REQUEST"


class InvalidAction(UsageError):
    """An action, reset option or frame failed validation; ``errors`` lists pydantic's findings."""

    code = "VALIDATION_ERROR"

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.details.get("errors", []))


class InvalidFrame(UsageError):
    """A frame could not be parsed (not JSON, not an object, unknown ``type``, too large)."""

    code = "INVALID_JSON"


class ResetNeeded(UsageError):
    """``step`` was called before ``reset`` or after the episode ended; call ``reset`` first."""

    code = "RESET_NEEDED"


class SeedNotSupported(UsageError):
    """The environment cannot make an episode reproducible from a seed, so it refuses one."""

    code = "SEED_NOT_SUPPORTED"


class ClientClosed(UsageError):
    """The client (or session) was used after ``close()``; open a new one."""

    code = "CLIENT_CLOSED"


class Unauthorized(UsageError):
    """The server requires a bearer token and none, or a wrong one, was given."""

    code = "UNAUTHORIZED"


# -- the server or environment failed -------------------------------------------------------------


class EnvironmentFailed(CorralError):
    """The environment's own code raised while handling the request; the session stays open."""

    code = "EXECUTION_ERROR"


class FactoryError(CorralError):
    """The server could not construct the environment for a new session."""

    code = "FACTORY_ERROR"


class DeadlineExceeded(CorralError):
    """A step did not finish within its deadline; the session was closed so it is never half-stepped."""

    code = "DEADLINE_EXCEEDED"


class CapacityReached(CorralError):
    """The server has no free session slot; retry after ``retry_after`` seconds or ask to wait."""

    code = "CAPACITY_REACHED"

    @property
    def retry_after(self) -> float | None:
        value = self.details.get("retry_after")
        return float(value) if value is not None else None


class SessionError(CorralError):
    """The session is gone (closed, expired, or never existed); open a new one."""

    code = "SESSION_ERROR"


# -- the link to the peer failed -----------------------------------------------------------------


class TransportError(CorralError):
    """The connection to the server failed."""

    code = "TRANSPORT_ERROR"


class ConnectionLost(TransportError):
    """The connection dropped and could not be resumed within the session's lease."""

    code = "CONNECTION_LOST"


class ProtocolError(TransportError):
    """The peer sent something this side cannot understand."""

    code = "PROTOCOL_ERROR"


# -- where the server runs ---------------------------------------------------------------------------


class RuntimeFailed(CorralError):
    """A runtime could not start, reach or stop an environment server; everything it started is gone."""

    code = "RUNTIME_FAILED"


class RuntimeUnavailable(RuntimeFailed):
    """This machine cannot provide the runtime (no bubblewrap, no namespaces, no Docker); the message says
    what to install or which runtime to use instead."""

    code = "RUNTIME_UNAVAILABLE"


_BY_CODE: dict[str, type[CorralError]] = {
    "INVALID_JSON": InvalidFrame,
    "UNKNOWN_TYPE": InvalidFrame,
    "FRAME_TOO_LARGE": InvalidFrame,
    "RATE_LIMITED": UsageError,
    "BAD_REQUEST": UsageError,
    "VALIDATION_ERROR": InvalidAction,
    "RESET_NEEDED": ResetNeeded,
    "SEED_NOT_SUPPORTED": SeedNotSupported,
    "UNAUTHORIZED": Unauthorized,
    "EXECUTION_ERROR": EnvironmentFailed,
    "FACTORY_ERROR": FactoryError,
    "DEADLINE_EXCEEDED": DeadlineExceeded,
    "CAPACITY_REACHED": CapacityReached,
    "SESSION_ERROR": SessionError,
    "SESSION_NOT_FOUND": SessionError,
    "RESUME_REJECTED": SessionError,
}


def error_for_code(code: str, message: str, details: dict[str, Any] | None = None) -> CorralError:
    """Build the exception that matches a wire error ``code`` (unknown codes become ``CorralError``)."""
    cls = _BY_CODE.get(code, CorralError)
    err = cls(message, details=details)
    err.code = code
    return err
