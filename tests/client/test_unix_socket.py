"""Both clients reach a server listening on a Unix socket through ``unix://`` URLs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import AsyncEnvClient, EnvClient
from corral.envs.echo import EchoAction, EchoEnvironment, EchoObservation
from corral.errors import TransportError, UsageError
from corral.server import ServerConfig

from ..support import RunningServer


@pytest.fixture(scope="module")
def unix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = str(tmp_path_factory.mktemp("uds") / "env.sock")
    server = RunningServer(EchoEnvironment, ServerConfig(), uds=path).start()
    try:
        yield path
    finally:
        server.stop()


@pytest.mark.parametrize("form", ["unix://{}", "unix:{}"])
def test_blocking_client_over_unix_socket(unix_server: str, form: str) -> None:
    with EnvClient(form.format(unix_server), action_type=EchoAction, observation_type=EchoObservation) as env:
        env.reset()
        result = env.step(EchoAction(message="hi"))
    assert result.observation.echoed_message == "hi"
    assert result.reward == pytest.approx(0.2)


async def test_async_client_over_unix_socket(unix_server: str) -> None:
    async with AsyncEnvClient(f"unix://{unix_server}", action_type=EchoAction,
                              observation_type=EchoObservation) as env:
        await env.reset()
        result = await env.step(EchoAction(message="hey"))
    assert result.observation.message_length == 3


def test_missing_socket_says_so(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="is the server running"):
        EnvClient(f"unix://{tmp_path / 'absent.sock'}").reset()


def test_relative_socket_path_is_refused() -> None:
    with pytest.raises(UsageError, match="absolute socket path"):
        EnvClient("unix:relative.sock")
