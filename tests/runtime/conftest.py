from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _runtime_dir_of_this_run() -> Iterator[None]:
    """Servers' folders go to a folder of this test run (short: Unix socket paths are limited to 108 bytes),
    removed at the end, so folders that tests leave on purpose (an owner killed) never pile up in /tmp."""
    if os.environ.get("CORRAL_RUNTIME_DIR"):
        yield
        return
    folder = tempfile.mkdtemp(prefix="crt-")
    os.environ["CORRAL_RUNTIME_DIR"] = folder
    try:
        yield
    finally:
        del os.environ["CORRAL_RUNTIME_DIR"]
        shutil.rmtree(folder, ignore_errors=True)


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
