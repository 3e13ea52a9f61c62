"""The entry point of every server process a runtime starts: ``python -m corral.runtime.child SPEC_FILE``.

The spec file (JSON, written by the runtime into the server's private folder) names the environment,
the Unix socket to listen on, the server settings and the secrets; the child reads and deletes it, so
secrets never appear on a command line. When the spec names a lease descriptor, the child stops as soon
as that pipe reaches end-of-file: its owner process has died.

A sandbox's zygote (:mod:`corral.runtime.zygote`) runs :func:`serve_spec` in each server it forks.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import orjson


def _watch_lease(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def read_spec(path: str) -> dict[str, Any]:
    """Load a spec file and delete it (it holds the token and secrets)."""
    with open(path, "rb") as handle:
        spec: dict[str, Any] = orjson.loads(handle.read())
    os.unlink(path)
    return spec


def serve_spec(spec: dict[str, Any]) -> None:
    """Serve the spec's environment until stopped."""
    for path in reversed(spec.get("python_path", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    os.environ.update(spec.get("secrets", {}))
    lease_fd = spec.get("lease_fd")
    if lease_fd is not None:
        threading.Thread(target=_watch_lease, args=(int(lease_fd),), name="corral-lease", daemon=True).start()

    from ..envs import resolve
    from ..server import ServerConfig, serve

    env_cls = resolve(spec["env"])
    serve(env_cls, uds=spec.get("uds"), host=spec.get("host", "127.0.0.1"), port=int(spec.get("port", 8000)),
          config=ServerConfig(**spec.get("config", {})), log_level=spec.get("log_level", "warning"))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m corral.runtime.child SPEC_FILE", file=sys.stderr)
        return 2
    serve_spec(read_spec(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
