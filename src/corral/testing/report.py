"""The outcome of :func:`~corral.testing.check_server`: named checks, each passed, failed or skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .conformance import ConformanceError


class Outcome(str, Enum):
    PASSED = "pass"
    FAILED = "fail"
    SKIPPED = "skip"


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, what came of it, and a message saying what was seen (and how to fix a failure)."""

    name: str
    outcome: Outcome
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED


@dataclass
class ServerReport:
    """Every check run against one server, in the order they ran."""

    url: str
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed (skipped checks do not count against the server)."""
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [check for check in self.checks if check.failed]

    def __getitem__(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def rows(self) -> list[tuple[str, str, str]]:
        """``(name, outcome, message)`` per check, ready for a table."""
        return [(check.name, check.outcome.value, check.message) for check in self.checks]

    def raise_for_failures(self) -> None:
        """Raise :class:`ConformanceError` listing every failed check; do nothing when all passed."""
        failures = self.failures
        if failures:
            listing = "\n".join(f"- {check.name}: {check.message}" for check in failures)
            raise ConformanceError(
                "server", f"{self.url} failed {len(failures)} of {len(self.checks)} checks:\n{listing}"
            )

    def __str__(self) -> str:
        width = max((len(check.name) for check in self.checks), default=0)
        lines = [f"{self.url}: {'ok' if self.ok else 'FAILED'}"]
        lines += [f"  {name:<{width}}  {outcome:<4}  {message}" for name, outcome, message in self.rows()]
        return "\n".join(lines)
