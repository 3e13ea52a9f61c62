"""Everything the blocking and async clients share that does no I/O: frames, replies, resume state.

The two clients differ only in how bytes move (``websockets.sync`` vs ``websockets.asyncio``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConnectionLost, CorralError, InvalidAction, ProtocolError, UsageError, error_for_code
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


class AnyObservation(Observation):
    """The observation type a client uses when it was not given one: every field is kept."""

    model_config = ConfigDict(extra="allow")


ObsT = TypeVar("ObsT", bound=Observation)
StateT = TypeVar("StateT", bound=State)


@dataclass(frozen=True)
class Timeouts:
    """``connect``: opening the socket and handshake. ``request``: waiting for one reply (None: forever).
    ``resume``: how long to keep trying to reconnect after the link drops (capped by the server's lease)."""

    connect: float = 10.0
    request: float | None = 330.0
    resume: float = 30.0


def websocket_url(url: str) -> str:
    """``http://h:p`` → ``ws://h:p/ws``; ``ws://`` URLs are kept; a missing ``/ws`` path is added."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        raise UsageError(f"unsupported URL scheme in {url!r}; use http://, https://, ws:// or wss://")
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
        """Why a compat link closed. An OpenEnv server ends a session (``CAPACITY_REACHED``,
        ``FACTORY_ERROR``, ``SESSION_ERROR``) with one error frame, unprompted or as a reply, then
        closes: that error is the reason, for every later call too, not the close."""
        if self.farewell is not None:
            return self.error(self.farewell.get("data") or {})
        because = f": {cause}" if cause is not None else ""
        return ConnectionLost(f"the connection to the server was lost (OpenEnv dialect: no resume){because}")

    def result(self, data: Any) -> StepResult[Any]:
        if not isinstance(data, dict) or "observation" not in data:
            raise ProtocolError(f"malformed observation envelope: {data!r:.200}")
        try:
            observation = self.observation_type.model_validate(data["observation"])
        except ValidationError as exc:
            raise ProtocolError(
                f"the server's observation does not match {self.observation_type.__name__}: {exc}"
            ) from exc
        done = bool(data.get("done", False))
        return StepResult(
            observation=observation,
            reward=data.get("reward"),
            terminated=bool(data.get("terminated", done)),
            truncated=bool(data.get("truncated", False)),
            info=data.get("info") or {},
        )

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

    def batch_results(self, data: Any) -> list[StepResult[Any]]:
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise ProtocolError("malformed batch reply")
        return [self.result(self.check(item, "observation")) for item in results]

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


def handshake_error(url: str, exc: BaseException) -> CorralError:
    """Translate a failed WebSocket open into a Corral error that says what to do."""
    from websockets.exceptions import InvalidStatus

    from ..errors import TransportError

    if isinstance(exc, InvalidStatus):
        response = exc.response
        try:
            import orjson

            body = orjson.loads(response.body or b"{}")
        except Exception:
            body = {}
        if not isinstance(body, dict):
            body = {}
        code = str(body.get("code") or {401: "UNAUTHORIZED", 503: "CAPACITY_REACHED"}.get(response.status_code, ""))
        message = str(body.get("message") or f"server refused the connection with HTTP {response.status_code}")
        if code:
            details = {k: v for k, v in body.items() if k not in ("code", "message")}
            retry_after = response.headers.get("Retry-After")
            if retry_after is not None:
                details["retry_after"] = retry_after
            return error_for_code(code, message, details)
        return TransportError(f"{url}: {message}")
    if isinstance(exc, (OSError, TimeoutError)):
        return TransportError(f"cannot connect to {url}: {exc}; is the server running?")
    return TransportError(f"cannot connect to {url}: {type(exc).__name__}: {exc}")
