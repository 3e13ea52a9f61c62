"""Run an app on uvicorn with the fast stack: uvloop, httptools, and Corral's own WebSocket protocol."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import socket
import sys
from typing import Any

import uvicorn

from ..environment import EnvClass
from .app import CorralApp, create_app
from .config import ServerConfig, raise_open_files_limit
from .httpproto import CorralHttpProtocol
from .wsprotocol import CorralWebSocketProtocol


class _RefusalNoise(logging.Filter):
    """uvicorn logs every WebSocket refused before the upgrade (401/503/410, sent as an HTTP response)
    as an ASGI error; those refusals are deliberate, so the line is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing handshake" not in record.getMessage()


_REFUSAL_FILTER = _RefusalNoise()


def uvicorn_config(app: Any, *, host: str = "127.0.0.1", port: int = 8000, uds: str | None = None,
                   config: ServerConfig | None = None, log_level: str = "warning", **extra: Any) -> uvicorn.Config:
    server_config = config or (app.config if isinstance(app, CorralApp) else ServerConfig())
    # Transport keepalive pings find half-open connections; a dead link detaches its sessions within the lease.
    ping = max(1.0, server_config.lease_s / 3)
    uv_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        uds=uds,
        loop="uvloop",
        # A Corral app keeps the bytes a client sends right after its upgrade request (its first frame).
        http=CorralHttpProtocol if isinstance(app, CorralApp) else "httptools",
        # /ws of a Corral app skips the ASGI layer; any other app gets uvicorn's own sans-I/O protocol.
        ws=CorralWebSocketProtocol if isinstance(app, CorralApp) else "websockets-sansio",
        ws_max_size=max(server_config.max_message_bytes * 2, 1 << 20),
        ws_ping_interval=ping,
        ws_ping_timeout=ping,
        ws_per_message_deflate=False,
        lifespan="on",
        log_level=log_level,
        access_log=False,
        backlog=4096,
        timeout_graceful_shutdown=5,
        **extra,
    )
    logging.getLogger("uvicorn.error").addFilter(_REFUSAL_FILTER)
    return uv_config


def serve(env: EnvClass | str, *, host: str = "127.0.0.1", port: int = 8000, uds: str | None = None,
          workers: int = 1, config: ServerConfig | None = None, log_level: str = "warning") -> None:
    """Serve ``env`` until interrupted. ``workers > 1`` starts that many processes on one port.

    With several workers each process keeps its own sessions: a client's connection stays on one
    worker, so WebSocket sessions work, but stateful HTTP sessions need a single worker.
    """
    raise_open_files_limit()
    server_config = config or ServerConfig()
    if workers > 1:
        if not isinstance(env, str):
            env = f"{env.__module__}:{env.__qualname__}"
        _serve_workers(env, host, port, workers, server_config, log_level)
        return
    app = create_app(env, server_config)
    uvicorn.Server(uvicorn_config(app, host=host, port=port, uds=uds, config=server_config,
                                  log_level=log_level)).run()


def _serve_workers(env: str, host: str, port: int, workers: int, config: ServerConfig, log_level: str) -> None:
    import multiprocessing

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(env, sock, config, log_level)) for _ in range(workers)]

    def stop(signum: int, frame: object) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    finally:
        stop(0, None)
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with contextlib.suppress(OSError):
            sock.close()


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this worker if the supervising process dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _worker(env: str, sock: socket.socket, config: ServerConfig, log_level: str) -> None:
    _die_with_parent()
    app = create_app(env, config)
    server = uvicorn.Server(uvicorn_config(app, config=config, log_level=log_level))
    server.run(sockets=[sock])
