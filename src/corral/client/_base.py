"""Everything the blocking and async clients share that does no I/O: frames, replies, resume state.

The two clients differ only in how bytes move: a blocking or an async transport (see ``transport.py``).
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Generic, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from ..errors import (
    ClientClosed,
    ConnectionLost,
    CorralError,
    InvalidAction,
    ProtocolError,
    TransportError,
    UsageError,
    error_for_code,
)
from ..protocol import (
    HEADER_OPEN,
    HEADER_RESUME_SESSION,
    HEADER_RESUME_TOKEN,
    HEADER_WAIT,
    JSON,
    MSGPACK,
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    Codec,
)
from ..types import Action, Observation, State, StepResult

#: Error codes after which an OpenEnv server closes the connection.
_FATAL = frozenset({"CAPACITY_REACHED", "FACTORY_ERROR", "SESSION_ERROR"})

#: Error codes after which trying to resume again cannot help.
_RESUME_HOPELESS = frozenset({"RESUME_REJECTED", "SESSION_ERROR", "UNAUTHORIZED"})


def _fields(envelope: dict[str, Any]) -> dict[str, Any]:
    """A wire envelope (either dialect) as :class:`StepResult`'s fields: compat has only ``done``, and fields a
    server adds are ignored."""
    done = envelope.get("done", False)
    return {
        "observation": envelope["observation"],
        "reward": envelope.get("reward"),
        "terminated": bool(envelope.get("terminated", done)),
        "truncated": bool(envelope.get("truncated", False)),
        "info": envelope.get("info") or {},
    }


@functools.cache
def _results_adapter(result_type: type[StepResult[Any]]) -> TypeAdapter[list[StepResult[Any]]]:
    return TypeAdapter(list[result_type])  # type: ignore[valid-type]


class AnyObservation(Observation):
    """The observation type a client uses when it was not given one: every field is kept."""

    model_config = ConfigDict(extra="allow")


ObsT = TypeVar("ObsT", bound=Observation)
StateT = TypeVar("StateT", bound=State)
TransportT = TypeVar("TransportT")
ClientT = TypeVar("ClientT")


class LinkState(str, Enum):
    NEW = "new"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True)
class Timeouts:
    """``connect``: opening the socket and handshake. ``request``: waiting for one reply (None: forever).
    ``resume``: how long to keep trying to reconnect after the link drops (capped by the server's lease)."""

    connect: float = 10.0
    request: float | None = 330.0
    resume: float = 30.0


def unix_socket_path(url: str) -> str | None:
    """The socket path of a ``unix:///abs/path.sock`` (or ``unix:/abs/path.sock``) URL; None for other URLs."""
    if not url.startswith("unix:"):
        return None
    path = url[len("unix:"):]
    if path.startswith("//"):
        path = path[2:]
    if not path.startswith("/"):
        raise UsageError(f"a unix: URL needs an absolute socket path, as in unix:///run/env.sock, not {url!r}")
    return path


def websocket_url(url: str) -> str:
    """``http://h:p`` → ``ws://h:p/ws``; ``ws://`` URLs are kept; a missing ``/ws`` path is added.
    ``unix:///path.sock`` URLs (a server on a Unix socket) are kept as they are."""
    unix_path = unix_socket_path(url)
    if unix_path is not None:
        return f"unix://{unix_path}"
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        raise UsageError(f"unsupported URL scheme in {url!r}; use http://, https://, ws://, wss:// or unix://")
    path = parts.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def http_url(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    path = path[: -len("/ws")] if path.endswith("/ws") else path
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class ClientCore(Generic[ObsT, StateT]):
    """Frame building and reply decoding for one client connection (no I/O)."""

    def __init__(
        self,
        url: str,
        *,
        action_type: type[Action] | None,
        observation_type: type[ObsT] | None,
        state_type: type[StateT] | None,
        token: str | None,
        codec: str,
        open_session: bool = True,
        admission_wait: float | None = None,
    ) -> None:
        if codec not in ("json", "msgpack"):
            raise UsageError(f"codec must be 'json' or 'msgpack', not {codec!r}")
        self.url = websocket_url(url)
        self.action_type = action_type
        self.observation_type: type[Observation] = observation_type or AnyObservation
        #: What a reply is validated into: ``StepResult[observation_type]``.
        self.result_type: type[StepResult[Any]] = StepResult[self.observation_type]  # type: ignore[name-defined]
        self.state_type: type[State] = state_type or State
        self.token = token
        self.codec_name = codec
        self.open_session = open_session
        self.admission_wait = admission_wait
        self.ids = itertools.count(1)
        self.corral = False
        self.codec: Codec = JSON
        self.session_id: str | None = None
        self.resume_token: str | None = None
        self.extra_sessions: dict[str, str] = {}
        self.hello: dict[str, Any] = {}
        #: compat: the fatal error frame an OpenEnv server sent before it closed the link (see link_lost).
        self.farewell: dict[str, Any] | None = None
        self.shut_down = False

    # -- handshake -------------------------------------------------------------------------------

    def subprotocols(self) -> list[str]:
        preferred = [SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON] if self.codec_name == "msgpack" else [SUBPROTOCOL_JSON]
        return preferred

    def headers(self, resume: bool) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if resume and self.session_id and self.resume_token:
            headers[HEADER_RESUME_SESSION] = self.session_id
            headers[HEADER_RESUME_TOKEN] = self.resume_token
        elif resume or not self.open_session:
            headers[HEADER_OPEN] = "0"
        if self.admission_wait and not resume:
            headers[HEADER_WAIT] = str(self.admission_wait)
        return headers

    def on_accepted(self, subprotocol: str | None) -> None:
        self.corral = subprotocol in (SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK)
        self.codec = MSGPACK if subprotocol == SUBPROTOCOL_MSGPACK else JSON

    def on_hello(self, frame: Any) -> None:
        if not isinstance(frame, dict) or frame.get("type") != "hello":
            raise ProtocolError(f"expected a hello frame from a corral/1 server, got {frame!r:.200}")
        data = frame["data"]
        self.hello = data
        if data.get("session"):
            self.session_id = data["session"]
            self.resume_token = data["resume_token"]

    def resume_frame(self) -> dict[str, Any] | None:
        if not self.extra_sessions:
            return None
        sessions = [{"session": s, "resume_token": t} for s, t in self.extra_sessions.items()]
        return {"type": "resume", "id": next(self.ids), "data": {"sessions": sessions}}

    # -- requests ------------------------------------------------------------------------------

    def request(self, kind: str, data: Any = None, session: str | None = None, **extra: Any) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": kind}
        if data is not None:
            frame["data"] = data
        if self.corral:
            frame["id"] = next(self.ids)
            if session is not None:
                frame["session"] = session
            frame.update({k: v for k, v in extra.items() if v is not None})
        return frame

    def reset_data(self, seed: int | None, episode_id: str | None, options: dict[str, Any]) -> dict[str, Any]:
        data = dict(options)
        if seed is not None:
            data["seed"] = seed
        if episode_id is not None:
            data["episode_id"] = episode_id
        return data

    def action_data(self, action: Action | dict[str, Any]) -> dict[str, Any]:
        if isinstance(action, BaseModel):
            return action.model_dump(mode=self.codec.dump_mode, exclude_defaults=True)
        if isinstance(action, dict):
            if self.action_type is not None:
                try:
                    model = self.action_type.model_validate(action)
                except ValidationError as exc:
                    errors = exc.errors(include_url=False, include_context=False)
                    where = ".".join(str(p) for p in errors[0]["loc"]) or "action"
                    raise InvalidAction(
                        f"invalid action for {self.action_type.__name__}: {where}: {errors[0]['msg']}",
                        details={"errors": errors},
                    ) from exc
                return model.model_dump(mode=self.codec.dump_mode, exclude_defaults=True)
            return action
        raise UsageError(f"an action must be an Action model or a dict, not {type(action).__name__}")

    @staticmethod
    def deadline_ms(deadline: float | None) -> float | None:
        return None if deadline is None else deadline * 1000

    # -- each call's frame, and what its reply means ----------------------------------------------

    def reset_frame(self, seed: int | None, episode_id: str | None, options: dict[str, Any]) -> dict[str, Any]:
        return self.request("reset", self.reset_data(seed, episode_id, options))

    def step_frame(self, action: Action | dict[str, Any], deadline: float | None) -> dict[str, Any]:
        return self.request("step", self.action_data(action), deadline_ms=self.deadline_ms(deadline))

    def step_result(self, reply: dict[str, Any]) -> StepResult[Any]:
        """The reply to ``reset`` or ``step``."""
        return self.result(self.check(reply, "observation"))

    def state_frame(self) -> dict[str, Any]:
        return self.request("state")

    def state_result(self, reply: dict[str, Any]) -> Any:
        return self.state(self.check(reply, "state"))

    def list_tools_frame(self) -> dict[str, Any]:
        return self.request("mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})

    def tools_result(self, reply: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.mcp_result(self.check(reply, "mcp"))["tools"])

    def tool_call_frame(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        params = {"name": name, "arguments": arguments}
        return self.request("mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})

    def tool_result(self, reply: dict[str, Any]) -> Any:
        """The tool's value; a tool that raised (``isError``) raises :class:`~corral.errors.CorralError`."""
        result = self.mcp_result(self.check(reply, "mcp"))
        if result.get("isError"):
            raise CorralError(str(result["content"][0]["text"]))
        return result.get("data")

    def open_frame(self, count: int, resets: list[Any] | None = None) -> dict[str, Any]:
        """Open ``count`` sessions; with ``resets`` (one reset payload each) the reply carries their first
        observations, so a session goes from nothing to an episode in one round trip."""
        self.require_corral("sessions()")
        data: dict[str, Any] = {"count": count}
        if resets is not None:
            data["reset"] = resets
        return self.request("open", data)

    def open_resets(self, count: int, reset: bool, seeds: Sequence[int | None] | None,
                    options: dict[str, Any]) -> list[Any] | None:
        """The reset payloads ``sessions(...)`` sends with ``open``: None when it asked for no reset."""
        if seeds is not None and len(seeds) != count:
            raise UsageError(f"sessions({count}) got {len(seeds)} seeds; give one per session")
        if not (reset or seeds is not None or options):
            return None
        return self.reset_payloads(count, seeds, options)

    def opened_results(self, reply: dict[str, Any]) -> list[StepResult[Any]] | None:
        """The first observations an ``open`` with ``reset`` returned (after :meth:`on_opened`)."""
        items = reply["data"]["sessions"]
        if not items or "result" not in items[0]:
            return None
        return [self.step_result(item["result"]) for item in items]

    def on_opened(self, reply: dict[str, Any]) -> list[str]:
        """Remember the sessions an ``open`` reply granted (to resume and close them); their ids."""
        ids = []
        for item in self.check(reply, "opened")["sessions"]:
            self.extra_sessions[item["session"]] = item["resume_token"]
            ids.append(item["session"])
        return ids

    def reset_payloads(self, size: int, seeds: Sequence[int | None] | None, options: dict[str, Any]) -> list[Any]:
        return [self.reset_data(seed, None, options) for seed in seeds or [None] * size]

    def batch_frame(self, kind: str, ids: list[str], payloads: list[Any]) -> dict[str, Any]:
        items = [{"session": sid, "data": data, "id": next(self.ids)} for sid, data in zip(ids, payloads, strict=True)]
        return self.request(f"{kind}_many", {"items": items})

    def batch_results(self, reply: dict[str, Any]) -> list[StepResult[Any]]:
        data = self.check(reply, "batch")
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise ProtocolError("malformed batch reply")
        envelopes = []
        for item in results:
            envelope = item.get("data") if type(item) is dict and item.get("type") == "observation" else None
            if type(envelope) is not dict or "observation" not in envelope:
                break
            envelopes.append(_fields(envelope))
        else:
            # Every item an observation: validated in one call (about half the cost of one call per item).
            try:
                return _results_adapter(self.result_type).validate_python(envelopes)
            except ValidationError:
                pass  # the item-by-item path below names the item that is wrong
        return [self.step_result(item) for item in results]

    def close_sessions_frame(self, ids: list[str]) -> dict[str, Any]:
        """The frame that closes these extra sessions, which are forgotten (never resumed) from now on."""
        for sid in ids:
            self.extra_sessions.pop(sid, None)
        return self.request("close_many", {"sessions": ids})

    def shutdown_frames(self) -> list[dict[str, Any]]:
        """The frames that close every session still open: the first time, then none.

        An OpenEnv server answers ``close`` by closing the link; a corral/1 server answers each frame."""
        if self.shut_down:
            return []
        self.shut_down = True
        frames = []
        if self.corral and self.extra_sessions:
            frames.append(self.close_sessions_frame(list(self.extra_sessions)))
        if self.session_id or not self.corral:
            frames.append(self.request("close"))
        return frames

    # -- replies -------------------------------------------------------------------------------

    def encode(self, frame: dict[str, Any]) -> str | bytes:
        data = self.codec.encode(frame)
        return data if self.codec.binary else data.decode()

    def decode(self, raw: str | bytes) -> dict[str, Any]:
        try:
            frame = self.codec.decode(raw)
        except Exception as exc:
            raise ProtocolError(f"server sent an undecodable frame: {exc}") from exc
        if not isinstance(frame, dict):
            raise ProtocolError(f"server sent a frame that is not an object: {frame!r:.200}")
        if not self.corral and frame.get("type") == "error" and (frame.get("data") or {}).get("code") in _FATAL:
            self.farewell = frame
        return frame

    def check(self, frame: dict[str, Any], expected: str) -> Any:
        kind = frame.get("type")
        if kind == "error":
            raise self.error(frame.get("data") or {})
        if kind != expected:
            raise ProtocolError(f"expected a {expected!r} reply, got {kind!r}")
        return frame.get("data")

    @staticmethod
    def error(data: dict[str, Any]) -> CorralError:
        details = {k: v for k, v in data.items() if k not in ("message", "code")}
        return error_for_code(str(data.get("code", "ERROR")), str(data.get("message", "server error")), details)

    def link_lost(self, cause: BaseException | None = None) -> CorralError:
        """Why a link that is not resumed (compat, or resume off) closed. An OpenEnv server ends a
        session (``CAPACITY_REACHED``, ``FACTORY_ERROR``, ``SESSION_ERROR``) with one error frame,
        unprompted or as a reply, then closes: that error is the reason, for every later call too."""
        if self.farewell is not None:
            return self.error(self.farewell.get("data") or {})
        because = f": {cause}" if cause is not None else ""
        why = "resume is off" if self.corral else "OpenEnv dialect: no resume"
        return ConnectionLost(f"the connection to the server was lost ({why}){because}")

    def result(self, data: Any) -> StepResult[Any]:
        if type(data) is not dict or "observation" not in data:
            raise ProtocolError(f"malformed observation envelope: {data!r:.200}")
        try:
            return self.result_type.model_validate(_fields(data))
        except ValidationError as exc:
            raise ProtocolError(
                f"the server's step result does not match {self.result_type.__name__} "
                f"(observation_type {self.observation_type.__name__}): {exc}"
            ) from exc

    def state(self, data: Any) -> Any:
        return self.state_type.model_validate(data)

    def mcp_result(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ProtocolError(f"malformed JSON-RPC reply: {data!r:.200}")
        if "error" in data:
            error = data["error"]
            raise UsageError(f"tool call failed ({error.get('code')}): {error.get('message')}",
                             details={"error": error})
        return data.get("result")

    def batch_actions(
        self, ids: list[str], actions: Sequence[Action | dict[str, Any] | None]
    ) -> tuple[list[str], list[Any], list[int]]:
        """The sessions to step (``None`` actions are skipped), their payloads, and their positions."""
        if len(actions) != len(ids):
            raise UsageError(f"got {len(actions)} actions for {len(ids)} sessions; pass one per session (None skips)")
        positions = [i for i, action in enumerate(actions) if action is not None]
        return [ids[i] for i in positions], [self.action_data(actions[i]) for i in positions], positions  # type: ignore[arg-type]

    @staticmethod
    def scatter(size: int, positions: list[int], results: list[StepResult[Any]]) -> list[StepResult[Any] | None]:
        out: list[StepResult[Any] | None] = [None] * size
        for position, result in zip(positions, results, strict=True):
            out[position] = result
        return out

    def require_corral(self, what: str) -> None:
        if not self.corral:
            raise UsageError(f"{what} needs a corral/1 server; this server speaks only the OpenEnv dialect")


class ClientBase(Generic[ObsT, StateT, TransportT]):
    """What :class:`~corral.EnvClient` and :class:`~corral.AsyncEnvClient` share: arguments, link state,
    and the properties that read the server's hello. They add the I/O.

    ``transport`` opens the WebSocket (see :mod:`corral.client.transport`); None dials a real socket.
    A typed client for one environment is a subclass that sets ``action_type``, ``observation_type`` and
    ``state_type``; arguments given to the constructor win over them.
    """

    action_type: ClassVar[type[Action] | None] = None
    observation_type: ClassVar[type[Observation] | None] = None
    state_type: ClassVar[type[State] | None] = None

    def __init__(
        self,
        url: str,
        *,
        action_type: type[Action] | None = None,
        observation_type: type[ObsT] | None = None,
        state_type: type[StateT] | None = None,
        token: str | None = None,
        codec: str = "json",
        timeouts: Timeouts | None = None,
        resume: bool = True,
        admission_wait: float | None = None,
        open_session: bool = True,
        transport: TransportT | None = None,
    ) -> None:
        cls = type(self)
        self._core: ClientCore[ObsT, StateT] = ClientCore(
            url, action_type=action_type or cls.action_type,
            observation_type=observation_type or cast("type[ObsT] | None", cls.observation_type),
            state_type=state_type or cast("type[StateT] | None", cls.state_type),
            token=token, codec=codec, open_session=open_session, admission_wait=admission_wait,
        )
        self.timeouts = timeouts or Timeouts()
        self.resume = resume
        self.state_ = LinkState.NEW
        self._transport = transport
        self._lost: CorralError | None = None  # why a link that is not resumed closed, for later calls
        self._init_link()

    def _init_link(self) -> None:
        """Set up what the subclass's I/O keeps per link (called by ``__init__``)."""

    @property
    def dialect(self) -> str:
        return "corral/1" if self._core.corral else "compat"

    @property
    def session_id(self) -> str | None:
        return self._core.session_id

    @property
    def hello(self) -> dict[str, Any]:
        return self._core.hello

    def _closing(self) -> list[str | bytes] | None:
        """Mark the client closed. The encoded frames that end its sessions, to send before the link
        closes; None when it was closed already."""
        self._lost = None
        if self.state_ is LinkState.CLOSED:
            return None
        self.state_ = LinkState.CLOSED
        return [self._core.encode(frame) for frame in self._core.shutdown_frames()]

    @staticmethod
    def _closed_error() -> ClientClosed:
        return ClientClosed("this client is closed; create a new one")

    def _refused(self) -> CorralError:
        """What a request on a closed client raises: why a compat server closed the link, if it said."""
        return self._closed_error() if self._lost is None else self._lost.with_traceback(None)

    def _step_timeout(self, deadline: float | None) -> float | None:
        """How long to wait for a step the server bounds with ``deadline``: its error comes back in time."""
        return None if deadline is None else deadline + self.timeouts.connect

    @staticmethod
    def _no_reply(limit: float | None) -> TransportError:
        return TransportError(f"no reply within {limit}s; the server may be overloaded or the environment hung")

    def _resume_delays(self) -> Iterator[float]:
        """The pauses between resume attempts (doubling from 20 ms to 1 s) until the resume window,
        capped by the server's lease, is over."""
        lease = float(self._core.hello.get("limits", {}).get("lease_s", self.timeouts.resume))
        deadline = time.monotonic() + min(self.timeouts.resume, lease)
        delay = 0.02
        while time.monotonic() < deadline:
            yield delay
            delay = min(delay * 2, 1.0)

    @staticmethod
    def _resume_hopeless(exc: CorralError) -> bool:
        return exc.code in _RESUME_HOPELESS

    @staticmethod
    def _resume_failed(last: BaseException | None) -> ConnectionLost:
        return ConnectionLost(f"the connection dropped and the session could not be resumed: {last}")


class GroupBase(Generic[ClientT]):
    """What :class:`~corral.SessionGroup` and :class:`~corral.AsyncSessionGroup` share: their client
    and their sessions."""

    def __init__(self, client: ClientT, ids: list[str], results: list[StepResult[Any]] | None = None) -> None:
        self._client = client
        self.ids = ids
        #: The first observation of each session when the group was opened with a reset, else None.
        self.results = results
        self._closed = False

    def __len__(self) -> int:
        return len(self.ids)
