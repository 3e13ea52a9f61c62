"""A zygote's entry point, in its sandbox: ``python -m corral.runtime.zygote CONTROL_FD LEASE_FD [MODULE...]``."""

from __future__ import annotations

import sys

from .forkserver import run_zygote

if __name__ == "__main__":
    if len(sys.argv) < 3:
        print("usage: python -m corral.runtime.zygote CONTROL_FD LEASE_FD [MODULE...]", file=sys.stderr)
        sys.exit(2)
    sys.exit(run_zygote(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]))
