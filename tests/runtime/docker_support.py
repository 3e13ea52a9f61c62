"""What the Docker tests share: a daemon (started with scripts/docker-up when none answers), the test image
(built once per test session, cached by content across sessions), and leftover checks."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from corral.errors import RuntimeUnavailable
from corral.runtime.images import BuiltImage, build_image

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
PACKAGE = HERE / "docker_pkg"
HOSTILE = "hostile_env:HostileEnv"


@functools.cache
def docker_client() -> Any:
    """The daemon's client; skips (saying why, on the terminal too) only when no daemon can run here."""
    from corral.runtime.docker import connect

    try:
        return connect()
    except RuntimeUnavailable as first:
        up = subprocess.run([str(ROOT / "scripts" / "docker-up")], capture_output=True, text=True, timeout=300,
                            check=False)
        try:
            return connect()
        except RuntimeUnavailable:
            why = f"{first.message}; scripts/docker-up said: {(up.stderr or up.stdout).strip()[-500:]}"
            print(f"\nDocker tests skipped: {why}", file=sys.__stderr__, flush=True)
            pytest.skip(f"no Docker daemon can run on this machine: {why}")


@functools.cache
def hostile_image() -> BuiltImage:
    """One image for every Docker test: Corral (so ``#echo`` works), the local package ``corral-testpkg``
    (built into a wheel), and the hostile environment as a single file; it serves the hostile one."""
    return build_image(HOSTILE, packages=[PACKAGE], files={"hostile_env.py": HERE / "hostile_env.py"},
                       client=docker_client())


def managed_containers() -> list[Any]:
    """Every container this test process owns (by its lease label), running or not."""
    from corral.runtime.lease import LABEL_LEASE, lease_id

    return list(docker_client().containers.list(all=True, filters={"label": f"{LABEL_LEASE}={lease_id()}"}))


def docker_ps_all() -> str:
    """``docker ps -a`` as the CLI prints it (names of every container, any owner)."""
    done = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                          timeout=60, check=True, env={**os.environ})
    return done.stdout
