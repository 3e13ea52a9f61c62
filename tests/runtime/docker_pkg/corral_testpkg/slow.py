"""An environment whose module takes a minute to import: its server never binds its socket in time."""

from __future__ import annotations

import time

from corral.envs.echo import EchoEnvironment

time.sleep(60)


class SlowImportEnv(EchoEnvironment):
    pass
