from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from corral import ServerConfig
from corral.environment import EnvClass
from corral.envs.echo import EchoEnvironment
from corral.envs.guess import GuessEnvironment

from .support import RunningServer

StartServer = Callable[..., RunningServer]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start a real server: ``start_server(EnvClass, ServerConfig(...))`` or ``start_server(EnvClass, lease_s=...)``;
    ``compat_only=True`` makes it answer like an OpenEnv server (no corral/1). Every server started in a test is
    stopped at teardown.
    """
    servers: list[RunningServer] = []

    def start(env_cls: EnvClass = EchoEnvironment, config: ServerConfig | None = None, *, compat_only: bool = False,
              **options: object) -> RunningServer:
        cfg = ServerConfig(**{**(config.__dict__ if config else {}), **options})  # type: ignore[arg-type]
        server = RunningServer(env_cls, cfg, compat_only=compat_only)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.server.should_exit = True
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def echo_server() -> Iterator[RunningServer]:
    """A shared echo server with the default configuration, for tests that do not inspect server-wide state."""
    server = RunningServer(EchoEnvironment, ServerConfig()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def guess_server() -> Iterator[RunningServer]:
    """A shared guess server with the default configuration."""
    server = RunningServer(GuessEnvironment, ServerConfig()).start()
    yield server
    server.stop()
