"""Shared by the CLI tests: a real OCI registry on 127.0.0.1 for ``corral push``."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from ..runtime.docker_support import ROOT

REGISTRY_PORT = 5000


@pytest.fixture(scope="session")
def registry() -> str:
    """The address of a registry on 127.0.0.1 (scripts/registry-up starts one when none answers)."""
    address = f"127.0.0.1:{REGISTRY_PORT}"
    try:
        httpx.get(f"http://{address}/v2/", timeout=2).raise_for_status()
    except httpx.HTTPError:
        done = subprocess.run([str(ROOT / "scripts" / "registry-up"), str(REGISTRY_PORT)], capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 0, f"scripts/registry-up failed: {done.stderr[-1000:]}"
    return address
