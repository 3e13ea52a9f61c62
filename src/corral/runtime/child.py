"""The entry point of a server started by a runtime: ``python -m corral.runtime.child SPEC_FILE``.

The spec file (JSON, written by the runtime into the server's private folder) names the environment,
the Unix socket to listen on, the server settings and the secrets; the child reads and deletes it, so
secrets never appear on a command line. When the spec names a lease descriptor, the child stops as soon
as that pipe reaches end-of-file: its owner process has died.
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


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m corral.runtime.child SPEC_FILE", file=sys.stderr)
        return 2
    with open(argv[0], "rb") as handle:
        spec: dict[str, Any] = orjson.loads(handle.read())
    os.unlink(argv[0])
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
