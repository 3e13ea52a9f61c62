"""An environment whose reset never finishes in time (for the readiness-timeout test)."""

from __future__ import annotations

import time
from typing import Any

from corral.envs.echo import EchoEnvironment


class SlowStartEnv(EchoEnvironment):
    def reset(self, seed: int | None = None, episode_id: str | None = None, **options: Any) -> Any:
        time.sleep(60)
        return super().reset(seed, episode_id, **options)
