"""coding: Write Python that passes unit tests; runs in a per-execution sandbox."""

from .client import AsyncCodingClient, CodingClient
from .environment import CodingEnvironment
from .models import CaseResult, CodingAction, CodingObservation, CodingState

__all__ = [
    "AsyncCodingClient",
    "CaseResult",
    "CodingAction",
    "CodingClient",
    "CodingEnvironment",
    "CodingObservation",
    "CodingState",
]
