"""Every reference environment in envs/ passes ``corral validate``: static checks, a reachable max_reward,
deterministic episodes, and the live conformance run in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import corral

ENVS = Path(__file__).resolve().parents[2] / "envs"
PACKAGES = sorted(manifest.parent for manifest in ENVS.glob("*/corral.yaml"))


@pytest.mark.parametrize("root", PACKAGES, ids=[root.name for root in PACKAGES])
def test_reference_environment_validates(root: Path) -> None:
    code, out, err = corral("validate", str(root))
    assert code == 0, f"{out}\n{err}"
    assert " 0 failed" in out
