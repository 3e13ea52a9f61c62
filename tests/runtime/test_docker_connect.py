"""``connect()`` without a daemon: a clear error, no socket left open (no Docker daemon needed)."""

from __future__ import annotations

import gc
import socket
import threading
from pathlib import Path

import pytest

from corral.errors import RuntimeUnavailable
from corral.runtime import docker


def _hang_up(server: socket.socket) -> None:
    """Accept every connection and close it at once, until the listening socket is closed."""
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        conn.close()


@pytest.mark.parametrize("listening", [False, True], ids=["no-socket", "not-docker"])
def test_no_daemon_is_a_clear_error_that_leaks_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       listening: bool) -> None:
    path = tmp_path / "docker.sock"
    monkeypatch.setattr(docker, "_client", None)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        if listening:  # something answers the socket but closes every connection: the SDK's own failure path
            server.bind(str(path))
            server.listen()
            server.settimeout(30)
            threading.Thread(target=_hang_up, args=(server,), daemon=True).start()
        with pytest.raises(RuntimeUnavailable, match="scripts/docker-up"):
            docker.connect()
    gc.collect()  # an unclosed socket would now raise ResourceWarning (warnings are errors)
