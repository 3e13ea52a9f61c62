"""The outcome of :func:`~corral.testing.check_server` and :func:`~corral.testing.check_package`: named checks,
each passed, failed or skipped."""

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
class Report:
    """Every check run against one subject (a server, a package), in the order they ran."""

    checks: list[CheckResult] = field(default_factory=list, kw_only=True)

    @property
    def subject(self) -> str:
        """What was checked, as the first line of ``str(report)`` names it."""
        return "checks"

    @property
    def ok(self) -> bool:
        """True when no check failed (skipped checks do not count against the subject)."""
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

    @property
    def kind(self) -> str:
        return "checks"

    def raise_for_failures(self) -> None:
        """Raise :class:`ConformanceError` listing every failed check; do nothing when all passed."""
        failures = self.failures
        if failures:
            listing = "\n".join(f"- {check.name}: {check.message}" for check in failures)
            raise ConformanceError(
                self.kind, f"{self.subject} failed {len(failures)} of {len(self.checks)} checks:\n{listing}"
            )

    def __str__(self) -> str:
        width = max((len(check.name) for check in self.checks), default=0)
        lines = [f"{self.subject}: {'ok' if self.ok else 'FAILED'}"]
        lines += [f"  {name:<{width}}  {outcome:<4}  {message}" for name, outcome, message in self.rows()]
        return "\n".join(lines)


@dataclass
class ServerReport(Report):
    """Every check run against one server, in the order they ran."""

    url: str

    @property
    def subject(self) -> str:
        return self.url

    @property
    def kind(self) -> str:
        return "server"


@dataclass
class PackageReport(Report):
    """Every check run on one environment package (or class): static, local, and live against its server."""

    #: The package's folder, or the environment as it was named.
    path: str
    #: Where the live checks ran (``subprocess at unix:///...``); None when no server was started.
    server: str | None = None

    @property
    def subject(self) -> str:
        return self.path

    @property
    def kind(self) -> str:
        return "package"
