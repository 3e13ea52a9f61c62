from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def processes_with(marker: str) -> list[int]:
    """Pids of processes whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and int(entry) != os.getpid():
            found.append(int(entry))
    return found


@pytest.fixture
def home_secret() -> Iterator[Path]:
    """A file in the host's home directory that no isolated server may read."""
    path = Path.home() / f".corral-test-secret-{uuid.uuid4().hex[:8]}"
    path.write_text("host secret")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
