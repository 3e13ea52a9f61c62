"""``EnvClient``: the blocking client against a real server."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from corral import State
from corral.client import AnyObservation, EnvClient, Timeouts
from corral.client._base import http_url, websocket_url
from corral.client.transport import Connection, socket_connect
from corral.envs.echo import EchoAction, EchoObservation
from corral.envs.guess import GuessObservation, GuessState
from corral.errors import (
    ClientClosed,
    ConnectionLost,
    CorralError,
    DeadlineExceeded,
    EnvironmentFailed,
    FactoryError,
    InvalidAction,
    ResetNeeded,
    SeedNotSupported,
    SessionError,
    TransportError,
    UsageError,
)

from ..support import (
    BlobEnv,
    BlobObservation,
    CountingEnv,
    CountObservation,
    RunningServer,
    SlowEnv,
    SlowObservation,
    wait_until,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_typed_results(echo_server: RunningServer) -> None:
    with EnvClient(echo_server.url, observation_type=EchoObservation) as env:
        assert env.dialect == "corral/1"
        assert env.session_id == env.hello["session"]
        reset = env.reset(episode_id="typed")
        assert isinstance(reset.observation, EchoObservation)
        assert reset.observation.echoed_message == "Echo environment ready!"
        result = env.step(EchoAction(message="four"))
        assert isinstance(result.observation, EchoObservation)
        assert result.observation.message_length == 4
        assert result.reward == pytest.approx(0.4)
        assert (result.terminated, result.truncated, result.done, result.info) == (False, False, False, {})
        assert env.step({"message": "dict"}).observation.echoed_message == "dict"
        state = env.state()
        assert isinstance(state, State)
        assert (state.episode_id, state.step_count) == ("typed", 2)


def test_untyped_observation_keeps_every_field(echo_server: RunningServer) -> None:
    with EnvClient(echo_server.url) as env:
        env.reset()
        observation = env.step({"message": "hi"}).observation
    assert isinstance(observation, AnyObservation)
    assert observation.model_dump() == {"metadata": {}, "echoed_message": "hi", "message_length": 2}


def test_metadata_info_and_gymnasium_flags(start_server: Any) -> None:
    server = start_server(CountingEnv)
    with EnvClient(server.url, observation_type=CountObservation) as env:
        env.reset()
        result = env.step({"n": 2})
    assert result.observation.metadata == {"step": 1}
    assert result.info == {"n": 2}


def test_guess_episode_with_typed_state(guess_server: RunningServer) -> None:
    with EnvClient(guess_server.url, observation_type=GuessObservation, state_type=GuessState) as env:
        observation = env.reset(seed=11, high=50, max_attempts=10).observation
        assert observation.high == 50
        result = env.step({"guess": (observation.low + observation.high) // 2})
        while not result.done:
            observation = result.observation
            result = env.step({"guess": (observation.low + observation.high) // 2})
        assert result.terminated
        assert not result.truncated
        assert result.reward == 1.0
        state = env.state()
        assert isinstance(state, GuessState)
        assert state.found is True
        with pytest.raises(ResetNeeded):
            env.step({"guess": 1})
        assert env.reset(seed=11).observation.hint == "start"


def test_truncated(guess_server: RunningServer) -> None:
    with EnvClient(guess_server.url, observation_type=GuessObservation) as env:
        env.reset(seed=2, high=1000, max_attempts=1)
        result = env.step({"guess": 0})
    assert result.truncated
    assert not result.terminated
    assert result.done


def test_connects_lazily_and_accepts_url_forms(echo_server: RunningServer) -> None:
    for url in (echo_server.url, echo_server.ws_url, f"127.0.0.1:{echo_server.port}", echo_server.url + "/"):
        env = EnvClient(url)
        try:
            assert env.reset().reward == 0.0
        finally:
            env.close()


def test_first_request_of_a_lazy_client_carries_an_id(start_server: Any) -> None:
    server = start_server(CountingEnv)
    env = EnvClient(server.url)
    try:
        env.reset()  # connects first, then builds a corral/1 frame
        assert len(server.manager.sessions[env.session_id].replay) == 1  # recorded by id: replayable
    finally:
        env.close()


def test_a_custom_transport_opens_the_connection(echo_server: RunningServer) -> None:
    calls: list[tuple[str, list[str], dict[str, str], float]] = []

    def recording(url: str, subprotocols: Sequence[str], headers: Mapping[str, str], open_timeout: float) -> Connection:
        calls.append((url, list(subprotocols), dict(headers), open_timeout))
        return socket_connect(url, subprotocols, headers, open_timeout)

    with EnvClient(echo_server.url, token="t", transport=recording, timeouts=Timeouts(connect=3)) as env:
        assert env.reset().reward == 0.0
    assert calls == [(websocket_url(echo_server.url), ["corral.v1"], {"Authorization": "Bearer t"}, 3)]


def test_step_before_reset(echo_server: RunningServer) -> None:
    with EnvClient(echo_server.url) as env, pytest.raises(ResetNeeded) as info:
        env.step({"message": "x"})
    assert "reset" in str(info.value)


def test_server_side_validation_error(echo_server: RunningServer) -> None:
    with EnvClient(echo_server.url) as env:
        env.reset()
        with pytest.raises(InvalidAction) as info:
            env.step({"message": 5})
        assert info.value.errors[0]["loc"] == ["message"]
        assert env.step({"message": "fine"}).observation.echoed_message == "fine"


def test_client_side_validation_error(start_server: Any) -> None:
    server = start_server()
    with EnvClient(server.url, action_type=EchoAction) as env:
        env.reset()
        with pytest.raises(InvalidAction) as info:
            env.step({"mesage": "typo"})
        assert info.value.errors
        assert env.state().step_count == 0
    assert "VALIDATION_ERROR" not in server.app.metrics.errors  # refused before it was sent


def test_environment_error(start_server: Any) -> None:
    server = start_server(SlowEnv)
    with EnvClient(server.url, observation_type=SlowObservation) as env:
        env.reset()
        with pytest.raises(EnvironmentFailed) as info:
            env.step({"fail": True})
        assert "on purpose" in str(info.value)
        assert env.step({"delay": 0}).reward == 1.0


def test_seed_not_supported(start_server: Any) -> None:
    class Unseedable(CountingEnv):
        seedable = False

    server = start_server(Unseedable)
    with EnvClient(server.url) as env:
        with pytest.raises(SeedNotSupported):
            env.reset(seed=1)
        env.reset()


def test_deadline(start_server: Any) -> None:
    server = start_server(SlowEnv)
    with EnvClient(server.url, observation_type=SlowObservation) as env:
        env.reset()
        assert env.step({"delay": 0.01}, deadline=5).observation.delay == 0.01
        with pytest.raises(DeadlineExceeded) as info:
            env.step({"delay": 5}, deadline=0.05)
        assert info.value.details["deadline_s"] == pytest.approx(0.05)
        with pytest.raises(SessionError):
            env.step({"delay": 0})
    assert server.manager.active == 0


def test_request_timeout_never_mismatches_a_late_reply(start_server: Any) -> None:
    server = start_server(SlowEnv)
    with EnvClient(server.url, observation_type=SlowObservation, timeouts=Timeouts(request=0.5)) as env:
        env.reset()
        with pytest.raises(TransportError, match="no reply within"):
            env.step({"delay": 1.2})
        session = server.manager.sessions[env.session_id]
        wait_until(lambda: not session.lock.locked())
        state = env.state()  # the late observation arrives first and is skipped
        assert isinstance(state, State)
        assert state.step_count == 1


def test_tools(guess_server: RunningServer) -> None:
    with EnvClient(guess_server.url) as env:
        env.reset(high=30)
        tools = env.list_tools()
        assert [t["name"] for t in tools] == ["range_size"]
        assert "input_schema" in tools[0]
        assert env.call_tool("range_size") == 30
        with pytest.raises(UsageError, match="episode control"):
            env.call_tool("reset")
        with pytest.raises(UsageError):
            env.call_tool("range_size", bogus=1)


def test_msgpack_codec_with_bytes(start_server: Any) -> None:
    server = start_server(BlobEnv)
    with EnvClient(server.url, codec="msgpack", observation_type=BlobObservation) as env:
        assert env.hello["codec"] == "msgpack"
        assert env.reset().observation.blob == BlobEnv.blob(4)
        result = env.step({"size": 100_000})
        assert isinstance(result.observation.blob, bytes)
        assert result.observation.blob == BlobEnv.blob(100_000)


def test_close_is_idempotent_and_ends_the_session(start_server: Any) -> None:
    CountingEnv.reset_counters()
    server = start_server(CountingEnv)
    env = EnvClient(server.url)
    env.reset()
    assert len(server.manager.sessions) == 1
    env.close()
    env.close()
    wait_until(lambda: server.manager.active == 0)
    wait_until(lambda: CountingEnv.closed == 1)  # close() runs just after the slot is freed


@pytest.mark.parametrize("call", ["reset", "step", "state", "connect", "list_tools", "sessions"])
def test_use_after_close(echo_server: RunningServer, call: str) -> None:
    env = EnvClient(echo_server.url)
    env.reset()
    env.close()
    args: dict[str, tuple[Any, ...]] = {"step": ({"message": "x"},), "sessions": (2,)}
    with pytest.raises(ClientClosed) as info:
        getattr(env, call)(*args.get(call, ()))
    assert "closed" in str(info.value)


def test_use_after_close_without_connecting(echo_server: RunningServer) -> None:
    env = EnvClient(echo_server.url)
    env.close()
    with pytest.raises(ClientClosed):
        env.reset()


def test_connection_refused() -> None:
    port = free_port()
    with pytest.raises(TransportError) as info:
        EnvClient(f"http://127.0.0.1:{port}", timeouts=Timeouts(connect=2)).connect()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "is the server running?" in message


def test_factory_error_on_connect(start_server: Any) -> None:
    class Broken(CountingEnv):
        def __init__(self) -> None:
            raise RuntimeError("missing model weights")

    server = start_server(Broken)
    with pytest.raises(FactoryError, match="missing model weights") as info:
        EnvClient(server.url).connect()
    assert info.value.details["factory_name"] == "Broken"


def test_wrong_path(echo_server: RunningServer) -> None:
    with pytest.raises(CorralError, match="/ws") as info:
        EnvClient(echo_server.url + "/env").connect()
    assert info.value.code == "NOT_FOUND"


def test_bad_arguments() -> None:
    with pytest.raises(UsageError, match="codec"):
        EnvClient("http://127.0.0.1:1", codec="xml")
    with pytest.raises(UsageError, match="scheme"):
        EnvClient("ftp://127.0.0.1:1")


def test_bad_action_type(echo_server: RunningServer) -> None:
    with EnvClient(echo_server.url) as env:
        env.reset()
        with pytest.raises(UsageError):
            env.step("hello")  # type: ignore[arg-type]


def test_url_helpers() -> None:
    assert websocket_url("http://h:1") == "ws://h:1/ws"
    assert websocket_url("https://h/env/") == "wss://h/env/ws"
    assert websocket_url("ws://h:1/ws") == "ws://h:1/ws"
    assert websocket_url("h:1") == "ws://h:1/ws"
    assert websocket_url("http://h:1/?x=1") == "ws://h:1/ws?x=1"
    assert http_url("ws://h:1/ws") == "http://h:1"
    assert http_url("wss://h/env/ws") == "https://h/env"
    assert http_url("http://h:1/") == "http://h:1"


def test_open_session_false(echo_server: RunningServer) -> None:
    with EnvClient(echo_server.url, open_session=False) as env:
        assert env.session_id is None
        with pytest.raises(SessionError):
            env.reset()
        group = env.sessions(2)
        assert len(group.reset()) == 2


# -- against an OpenEnv-style server (compat only) -------------------------------------------------


def test_compat_fallback(start_server: Any) -> None:
    server = start_server(CountingEnv, compat_only=True)
    with EnvClient(server.url, observation_type=CountObservation) as env:
        assert env.dialect == "compat"
        assert env.session_id is None
        assert env.hello == {}
        env.reset()
        result = env.step({"n": 3})
        assert result.observation.total == 3
        assert result.observation.metadata == {}  # compat drops metadata
        assert (result.info, result.truncated) == ({}, False)
        assert env.state().step_count == 1
        with pytest.raises(UsageError, match="corral/1"):
            env.sessions(2)
        with pytest.raises(InvalidAction):
            env.step({"n": "x"})
    wait_until(lambda: server.manager.active == 0)


def test_compat_timeout_closes_the_client(start_server: Any) -> None:
    server = start_server(SlowEnv, compat_only=True)
    env = EnvClient(server.url, timeouts=Timeouts(request=0.5))
    env.reset()
    with pytest.raises(TransportError, match="no reply within"):
        env.step({"delay": 1.2})
    with pytest.raises(ClientClosed):
        env.state()  # without ids a late reply would desync every later one
    env.close()


def test_compat_link_loss_is_not_resumed(start_server: Any) -> None:
    server = start_server(CountingEnv, compat_only=True)
    env = EnvClient(server.url)
    env.reset()
    assert env._ws is not None
    env._ws.socket.shutdown(socket.SHUT_RDWR)
    with pytest.raises(ConnectionLost):
        env.step({"n": 1})
    with pytest.raises(CorralError):
        env.step({"n": 1})
    env.close()
