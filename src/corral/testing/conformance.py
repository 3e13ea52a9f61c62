"""What the conformance checks share: their error, and how they compare two runs of an episode."""

from __future__ import annotations

from typing import Any

from ..errors import CorralError


class ConformanceError(CorralError):
    """An environment or server breaks the Corral contract. The message says what is wrong and how to fix it.

    ``check`` names the check that failed (``"reset"``, ``"seed"``, ``"close"``...); ``problem`` and ``fix``
    are the two halves of the message.
    """

    code = "CONFORMANCE_ERROR"

    def __init__(self, check: str, problem: str, fix: str | None = None) -> None:
        message = f"[{check}] {problem}" + (f"\n  fix: {fix}" if fix else "")
        super().__init__(message, details={"check": check})
        self.problem = problem
        self.fix = fix

    @property
    def check(self) -> str:
        return str(self.details["check"])


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two JSON-like values first differ, as ``"path: a != b"``; None when they are equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys(), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                return f"{where}: only in the {'first' if key in a else 'second'} run"
            found = first_difference(a[key], b[key], where)
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            found = first_difference(x, y, f"{path}[{index}]")
            if found is not None:
                return found
        if len(a) != len(b):
            return f"{path or 'trajectory'}: {len(a)} entries in the first run, {len(b)} in the second"
        return None
    if a != b or type(a) is not type(b):
        return f"{path or 'value'}: {a!r:.80} != {b!r:.80}"
    return None
