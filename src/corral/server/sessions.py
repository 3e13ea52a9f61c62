"""Sessions: admission, the operations on one environment instance, leases and the reaper.

A session is one environment instance. It is *attached* while a connection carries it and
*detached* after that connection drops (or between HTTP requests); a detached session lives for its
lease so a client can resume it, then the reaper closes it. The reaper always runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Coroutine
from enum import Enum
from typing import Any, TypeVar

from pydantic import ValidationError

from ..concurrency import ThreadPool
from ..environment import AsyncEnvironment, EnvClass
from ..errors import (
    CapacityReached,
    CorralError,
    DeadlineExceeded,
    EnvironmentFailed,
    FactoryError,
    InvalidAction,
    ResetNeeded,
    SeedNotSupported,
    SessionError,
)
from ..protocol.codec import CODECS
from ..types import Action, State, StepResult
from .config import ServerConfig
from .metrics import Metrics
from .runner import EnvRunner

T = TypeVar("T")

#: On shutdown, how long to wait for environments whose close waits on a call still running.
_SHUTDOWN_GRACE_S = 5.0


#: A reply kept for a retry: the frame as it went out, ``(codec name, bytes)`` (one flat object that the garbage
#: collector never walks, and no copy: the very bytes that were written); a reply not sent on its own (a batch
#: item, an HTTP body) as its dict; a request still running as the future of its reply.
Record = tuple[str, bytes] | dict[str, Any] | asyncio.Future[dict[str, Any]]


class SessionState(str, Enum):
    OPEN = "open"
    CLOSED = "closed"


class Session:
    """One environment instance and its bookkeeping. Requests on one session run one at a time, in order."""

    __slots__ = (
        "by_id",
        "connection",
        "detached_at",
        "id",
        "last_active",
        "lease_s",
        "lock",
        "needs_reset",
        "pending",
        "replay",
        "runner",
        "state",
        "token",
    )

    def __init__(self, runner: EnvRunner, lease_s: float, by_id: bool = False) -> None:
        self.id = secrets.token_urlsafe(12)
        #: HTTP and MCP sessions are named by their id alone; WebSocket ones need their connection or token.
        self.by_id = by_id
        self.token = secrets.token_urlsafe(18)
        self.runner = runner
        self.lease_s = lease_s
        self.state = SessionState.OPEN
        self.needs_reset = True
        self.lock = asyncio.Lock()
        #: Requests of this session handed to tasks and not finished yet (see Connection.on_frame).
        self.pending = 0
        self.connection: object | None = None
        self.detached_at: float | None = time.monotonic()
        self.last_active = time.monotonic()
        #: Replies to requests by id, so a retried request is answered, never applied twice (see Record).
        self.replay: OrderedDict[Any, Record] = OrderedDict()

    def remember(self, request_id: Any, reply: Record, window: int) -> None:
        """Keep the reply to ``request_id`` (or its future while it runs) for a retry, at most ``window`` of them."""
        self.replay[request_id] = reply
        if len(self.replay) > window:
            self.replay.popitem(last=False)

    def recall(self, request_id: Any) -> dict[str, Any] | asyncio.Future[dict[str, Any]] | None:
        """The reply kept for ``request_id`` (a copy, free to change), its future while it runs, or None."""
        record = self.replay.get(request_id)
        if isinstance(record, tuple):
            codec, data = record
            reply: dict[str, Any] = CODECS[codec].decode(data)
            return reply
        return dict(record) if isinstance(record, dict) else record

    @property
    def closed(self) -> bool:
        return self.state is SessionState.CLOSED

    def attach(self, connection: object) -> None:
        self.connection = connection
        self.detached_at = None
        self.last_active = time.monotonic()

    def detach(self, connection: object) -> None:
        if self.connection is connection:
            self.connection = None
            self.detached_at = time.monotonic()


class SessionManager:
    """Admits, runs and expires the sessions of one environment class."""

    def __init__(self, env_cls: EnvClass, config: ServerConfig, metrics: Metrics) -> None:
        self.env_cls = env_cls
        self.config = config
        self.metrics = metrics
        self.capacity = config.resolved_capacity(env_cls.concurrent_sessions)
        self.pool = ThreadPool(config.thread_pool_size)
        self.sessions: dict[str, Session] = {}
        self._reserved = 0
        self._freed = asyncio.Event()
        self._reaper: asyncio.Task[None] | None = None
        #: Closes deferred until a running call returns; shutdown waits for them.
        self._closing: set[asyncio.Task[None]] = set()
        self.tools = env_cls.tool_specs()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap_forever(), name="corral-reaper")

    async def shutdown(self) -> None:
        """Close every session and stop the reaper."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        await asyncio.gather(*(self.close(s) for s in list(self.sessions.values())), return_exceptions=True)
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=_SHUTDOWN_GRACE_S)
        self.pool.close()

    # -- admission ------------------------------------------------------------------------------

    @property
    def active(self) -> int:
        return len(self.sessions) + self._reserved

    def free_slots(self) -> int:
        return self.capacity - self.active

    async def admit(self, count: int = 1, wait_s: float = 0.0) -> None:
        """Reserve ``count`` slots, waiting up to ``wait_s`` for them; raise CapacityReached otherwise."""
        deadline = time.monotonic() + min(wait_s, self.config.max_wait_s)
        while self.free_slots() < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.capacity_error()
            self._freed.clear()
            try:
                await asyncio.wait_for(self._freed.wait(), remaining)
            except asyncio.TimeoutError:
                raise self.capacity_error() from None
        self._reserved += count

    def capacity_error(self) -> CapacityReached:
        return CapacityReached(
            f"server at capacity ({self.active}/{self.capacity} sessions); retry later or ask to wait",
            details={"active_sessions": self.active, "max_sessions": self.capacity, "retry_after": 1},
        )

    async def open(self, *, admitted: bool = False, lease_s: float | None = None, by_id: bool = False) -> Session:
        """Create a session. Without ``admitted``, a slot is reserved first (or CapacityReached).

        ``by_id``: the session may be used by anyone naming its id (HTTP ``X-Session-Id``, MCP
        ``session_id``); other sessions are reachable only through their connection or resume token.
        """
        if not admitted:
            await self.admit()
        try:
            runner = await EnvRunner.create(self.env_cls, self.pool)
        except Exception as exc:
            self._release_reservation()
            raise FactoryError(
                f"could not create environment {self.env_cls.__name__}: {exc}",
                details={"factory_name": self.env_cls.__name__},
            ) from exc
        self._reserved -= 1
        session = Session(runner, self.config.lease_s if lease_s is None else lease_s, by_id)
        self.sessions[session.id] = session
        self.metrics.sessions_opened += 1
        self.metrics.sessions_active = len(self.sessions)
        return session

    def _release_reservation(self) -> None:
        self._reserved -= 1
        self._freed.set()

    def release(self, count: int) -> None:
        """Give back slots reserved by :meth:`admit` but not used."""
        for _ in range(count):
            self._release_reservation()

    def get(self, session_id: str) -> Session:
        """A session opened over HTTP or MCP, by its id (WebSocket sessions are not reachable this way)."""
        session = self.sessions.get(session_id)
        if session is None or not session.by_id:
            raise SessionError(
                f"session {session_id!r} does not exist (closed, expired or never opened); open a new one",
                details={"session": session_id},
            )
        return session

    def resume(self, session_id: str, token: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None or not secrets.compare_digest(session.token, token):
            err = SessionError(
                f"cannot resume session {session_id!r}: unknown session or wrong token (its lease may have "
                "expired); open a new session",
                details={"session": session_id},
            )
            err.code = "RESUME_REJECTED"
            raise err
        return session

    async def close(self, session: Session) -> None:
        """Close a session and its environment. Idempotent."""
        if session.closed:
            return
        session.state = SessionState.CLOSED
        if self.sessions.pop(session.id, None) is not None:
            self.metrics.sessions_active = len(self.sessions)
            self._freed.set()
        for future in session.replay.values():
            if isinstance(future, asyncio.Future) and not future.done():
                future.cancel()
        if session.lock.locked():
            # A request of this session is running (possibly the one asking to close): close after it.
            self._close_later(self._close_runner_when_idle(session))
        else:
            await _close_quietly(session.runner)

    def _close_later(self, closing: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_runner_when_idle(self, session: Session) -> None:
        async with session.lock:
            await _close_quietly(session.runner)

    async def _close_runner_after(self, call: asyncio.Future[Any], session: Session) -> None:
        with contextlib.suppress(BaseException):
            await call
        await _close_quietly(session.runner)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.reap_interval_s)
            await self.reap()

    async def reap(self) -> None:
        """Close detached sessions past their lease and connected ones idle past the idle timeout.
        A session with a request running is not reaped until that request is over."""
        now = time.monotonic()
        idle = self.config.idle_timeout_s
        expired = [
            s
            for s in self.sessions.values()
            if not s.lock.locked()
            and (
                (s.detached_at is not None and now - s.detached_at > s.lease_s)
                or (s.detached_at is None and now - s.last_active > idle)
            )
        ]
        for session in expired:
            await self.close(session)

    # -- operations -------------------------------------------------------------------------------

    async def reset(self, session: Session, options: dict[str, Any] | None) -> StepResult[Any]:
        kwargs = dict(options or {})
        seed = kwargs.get("seed")
        if seed is not None:
            if not self.env_cls.seedable:
                raise SeedNotSupported(
                    f"{self.env_cls.__name__} cannot reproduce an episode from a seed; reset without one"
                )
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise _invalid("seed must be an integer >= 0", "seed", seed)
        episode_id = kwargs.get("episode_id")
        if episode_id is not None and (not isinstance(episode_id, str) or len(episode_id) > 255):
            raise _invalid("episode_id must be a string of at most 255 characters", "episode_id", episode_id)
        result = await self._run(session, session.runner.reset(**kwargs), "reset", None)
        session.needs_reset = result.terminated or result.truncated
        return result

    async def step(self, session: Session, action_data: Any, deadline_s: float | None) -> StepResult[Any]:
        action = self._action(session, action_data)
        started = time.monotonic()
        result = await self._run(session, session.runner.step(action), "step", deadline_s)
        return self._stepped(session, result, time.monotonic() - started)

    def step_inline(self, session: Session, action_data: Any) -> StepResult[Any]:
        """:meth:`step` for an ``inline`` sync environment, on the loop without a coroutine: the hot path.

        The caller makes sure nothing else of this session is running (its lock is free)."""
        action = self._action(session, action_data)
        if session.closed:
            raise SessionError("the session is closed; open a new one", details={"session": session.id})
        started = time.monotonic()  # one clock for the histogram and the lease
        try:
            result: StepResult[Any] = session.runner.env.step(action)  # type: ignore[assignment]
        except CorralError:
            raise
        except Exception as exc:
            raise EnvironmentFailed(f"{type(exc).__name__}: {exc}") from exc
        finally:
            session.last_active = now = time.monotonic()
        return self._stepped(session, result, now - started)

    def _stepped(self, session: Session, result: StepResult[Any], seconds: float) -> StepResult[Any]:
        self.metrics.observe_step(seconds)
        if result.terminated or result.truncated:
            session.needs_reset = True
        return result

    def _action(self, session: Session, action_data: Any) -> Action:
        # A malformed action is reported as such whatever the episode's state (OpenEnv validates first too).
        try:
            action: Action = self.env_cls.action_type.model_validate(action_data)
        except ValidationError as exc:
            raise InvalidAction(
                f"invalid action for {self.env_cls.__name__}: {_summary(exc)}",
                details={"errors": exc.errors(include_url=False, include_context=False)},
            ) from exc
        if session.needs_reset:
            raise ResetNeeded("the episode has ended or was never started; call reset before step")
        return action

    async def state(self, session: Session) -> State:
        return await self._run(session, session.runner.state(), "state", None)

    async def call_tool(self, session: Session, name: str, arguments: dict[str, Any]) -> Any:
        spec = self.tools.get(name)
        if spec is None:
            raise InvalidAction(
                f"unknown tool {name!r}; available: {', '.join(sorted(self.tools)) or 'none'}",
                details={"errors": []},
            )
        kwargs = spec.validate(arguments)
        return await self._run(session, session.runner.call(spec.method, kwargs), f"tool {name}", None)

    async def _run(self, session: Session, call: Coroutine[Any, Any, T], what: str, deadline_s: float | None) -> T:
        if session.closed:
            call.close()
            raise SessionError("the session is closed; open a new one", details={"session": session.id})
        limit = self.config.step_timeout_s if deadline_s is None else min(deadline_s, self.config.step_timeout_s)
        session.last_active = time.monotonic()
        if not session.runner.preemptible:
            try:
                return await call
            except CorralError:
                raise
            except Exception as exc:
                raise EnvironmentFailed(f"{type(exc).__name__}: {exc}") from exc
        task = asyncio.ensure_future(call)
        try:
            done, _ = await asyncio.wait((task,), timeout=limit)
        except asyncio.CancelledError:
            task.cancel()
            raise
        session.last_active = time.monotonic()  # idle time counts from the end of the last request
        if not done:
            # The instance is mid-call and cannot be trusted again: retire the session now, close the
            # environment once the call really returns (a blocking call cannot be interrupted, and its
            # thread must not see close() while it still runs).
            if isinstance(session.runner.env, AsyncEnvironment):
                task.cancel()
            self._close_later(self._close_runner_after(task, session))
            session.state = SessionState.CLOSED
            if self.sessions.pop(session.id, None) is not None:
                self.metrics.sessions_active = len(self.sessions)
                self._freed.set()
            raise DeadlineExceeded(
                f"{what} did not finish within {limit:g}s; the session was closed so it is never left "
                "half-stepped. Open a new session, and raise the deadline if the environment is slow",
                details={"session": session.id, "deadline_s": limit},
            )
        try:
            return task.result()
        except CorralError:
            raise
        except Exception as exc:
            raise EnvironmentFailed(f"{type(exc).__name__}: {exc}") from exc


async def _close_quietly(runner: EnvRunner) -> None:
    # A failing close must not keep the slot: the instance is dropped either way.
    with contextlib.suppress(Exception):
        await runner.close()


def _invalid(message: str, field: str, value: Any) -> InvalidAction:
    return InvalidAction(
        message, details={"errors": [{"type": "value_error", "loc": [field], "msg": message, "input": value}]}
    )


def _summary(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"]) or "action"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {first['msg']}{more}"
