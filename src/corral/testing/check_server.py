"""``check_server``: conformance of a running server, checked over the network as clients see it.

Episodes run through the real :class:`~corral.client.EnvClient`; frames no real client would send
(malformed JSON, unknown types, a dropped link) go over raw WebSockets, built and read with the
client's own :class:`~corral.client._base.ClientCore`.
"""

from __future__ import annotations

import contextlib
import importlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect, unix_connect

from ..client import EnvClient, Timeouts
from ..client._base import ClientCore, http_url, unix_socket_path
from ..client.transport import handshake_error
from ..client.websocket import UNIX_HANDSHAKE_URL
from ..errors import CapacityReached, CorralError, SeedNotSupported, TransportError
from ..types import Action, StepResult
from .conformance import ConformanceError, first_difference
from .report import CheckResult, Outcome, ServerReport

_METADATA_KEYS = ("name", "description", "readme_content", "version", "author", "documentation_url")


class _Skip(Exception):
    """A check that does not apply to this server; the message says why."""


class _Probe:
    """What every check needs: where the server is, how to reach it, and what was learnt so far."""

    def __init__(self, url: str, sample_action: Action | dict[str, Any], token: str | None, seed: int, steps: int,
                 timeout: float, http: httpx.Client, reset_options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.sample_action = sample_action
        self.reset_options = dict(reset_options or {})
        self.token = token
        self.seed = seed
        self.steps = steps
        self.timeout = timeout
        self.timeouts = Timeouts(connect=timeout, request=timeout, resume=timeout)
        self.http = http
        self.schema: dict[str, Any] | None = None
        self.seedable: bool | None = None

    def client(self, *, wait: float | None = None) -> EnvClient[Any, Any]:
        """A real client. It queues up to ``wait`` seconds (default: the timeout) for a free session slot, so
        that sessions closed by an earlier check have time to free theirs on a one-session server."""
        return EnvClient(self.url, token=self.token, timeouts=self.timeouts,
                         admission_wait=self.timeout if wait is None else wait)

    def reset(self, env: EnvClient[Any, Any], seed: int | None = None) -> StepResult[Any]:
        """Reset with the options every reset of this check carries."""
        return env.reset(seed=seed, **self.reset_options)

    def reset_frame(self, core: ClientCore[Any, Any]) -> dict[str, Any]:
        return core.request("reset", dict(self.reset_options) or None)

    def core(self, *, anonymous: bool = False) -> ClientCore[Any, Any]:
        return ClientCore(self.url, action_type=None, observation_type=None, state_type=None,
                          token=None if anonymous else self.token, codec="json", admission_wait=self.timeout)

    @contextlib.contextmanager
    def raw(self, core: ClientCore[Any, Any], *, corral: bool, resume: bool = False) -> Iterator[ClientConnection]:
        """A raw WebSocket: compat, or corral/1 (hello read) when the server agrees to it."""
        options: dict[str, Any] = {
            "subprotocols": core.subprotocols() if corral else None, "additional_headers": core.headers(resume),
            "open_timeout": self.timeout, "max_size": None, "compression": None,
        }
        unix_path = unix_socket_path(core.url)
        try:
            opened = (connect(core.url, **options) if unix_path is None
                      else unix_connect(unix_path, UNIX_HANDSHAKE_URL, **options))
        except Exception as exc:
            raise handshake_error(core.url, exc) from exc
        with opened as ws:
            core.on_accepted(ws.subprotocol)
            if core.corral:
                core.on_hello(core.decode(ws.recv(self.timeout)))
            yield ws

    def ask(self, ws: ClientConnection, core: ClientCore[Any, Any], frame: dict[str, Any] | str) -> dict[str, Any]:
        """Send one frame (a raw string as is) and return its reply."""
        ws.send(frame if isinstance(frame, str) else core.encode(frame))
        frame_id = None if isinstance(frame, str) else frame.get("id")
        while True:
            reply = core.decode(ws.recv(self.timeout))
            if not core.corral or reply.get("id") == frame_id:
                return reply


def check_server(
    url: str,
    *,
    sample_action: Action | dict[str, Any],
    token: str | None = None,
    seed: int = 0,
    steps: int = 3,
    timeout: float = 10.0,
    reset_options: dict[str, Any] | None = None,
) -> ServerReport:
    """Run every conformance check against the server at ``url`` and report each one; never raises for a failure.

    Checks: ``health`` (``GET /health`` is 200 healthy), ``metadata`` (``GET /metadata`` has OpenEnv's
    keys), ``schema`` (``GET /schema`` has action, observation and state schemas, and the sample action
    matches its schema), ``auth`` (with ``token``: routes but ``/health`` refuse requests without it),
    ``episode`` (a reset and a step with ``sample_action`` succeed and the observation and state match
    their schemas), ``seed`` (two sessions with the same seed and actions see the same episode),
    ``isolation`` (two concurrent sessions count their steps apart), ``error:<CODE>`` (malformed JSON,
    an unknown type, a bad action and a step before reset get their error codes and leave the session
    open), and ``resume`` (corral/1: a dropped link is resumed with the session id and token, the
    episode goes on, and a wrong token is refused).

    Every reset carries ``reset_options`` (for an environment whose reset needs, say, a task name).
    When ``health`` fails the other checks are skipped. Schema matching uses ``jsonschema`` when it is
    installed; otherwise that part is noted as not checked.
    Call :meth:`ServerReport.raise_for_failures` to turn failures into a :class:`ConformanceError`.
    """
    report = ServerReport(http_url(url))
    headers = {"Authorization": f"Bearer {token}"} if token else None
    with _http_client(url, headers, timeout) as http:
        probe = _Probe(url, sample_action, token, seed, steps, timeout, http, reset_options)
        for name, check in _CHECKS:
            if report.checks and report.checks[0].failed:
                report.checks.append(CheckResult(name, Outcome.SKIPPED, "not run: the server is not healthy"))
            else:
                report.checks.append(_run(name, check, probe))
    return report


def _http_client(url: str, headers: dict[str, str] | None, timeout: float) -> httpx.Client:
    """An HTTP client of the server at ``url``, over its Unix socket for a ``unix://`` URL."""
    unix_path = unix_socket_path(url)
    if unix_path is None:
        return httpx.Client(base_url=http_url(url), headers=headers, timeout=timeout)
    return httpx.Client(base_url="http://localhost", headers=headers, timeout=timeout,
                        transport=httpx.HTTPTransport(uds=unix_path))


def _run(name: str, check: Callable[[_Probe], str], probe: _Probe) -> CheckResult:
    try:
        return CheckResult(name, Outcome.PASSED, check(probe))
    except _Skip as skip:
        return CheckResult(name, Outcome.SKIPPED, str(skip))
    except ConformanceError as exc:
        message = exc.problem + (f" (fix: {exc.fix})" if exc.fix else "")
        return CheckResult(name, Outcome.FAILED, message)
    except (httpx.HTTPError, OSError, TimeoutError, TransportError) as exc:
        return CheckResult(name, Outcome.FAILED, f"cannot talk to the server: {type(exc).__name__}: {exc}")
    except CorralError as exc:
        return CheckResult(name, Outcome.FAILED, f"the server answered {exc.code}: {exc.message}")
    except Exception as exc:
        return CheckResult(name, Outcome.FAILED, f"unexpected {type(exc).__name__}: {exc}")


def _jsonschema() -> Any:
    try:
        return importlib.import_module("jsonschema")
    except ImportError:
        return None


def _match(check: str, what: str, instance: Any, schema: Any) -> str:
    """Validate ``instance`` against a served JSON schema; return a note saying what was checked."""
    jsonschema = _jsonschema()
    if jsonschema is None:
        return f"{what} not checked against /schema (pip install jsonschema)"
    try:
        jsonschema.validate(instance, schema)
    except jsonschema.ValidationError as exc:
        raise ConformanceError(check, f"the {what} does not match the schema served at /schema: {exc.message}",
                               "declare the types the environment really uses (action_type, observation_type, "
                               "state_type)") from exc
    return f"{what} matches /schema"


# -- HTTP ----------------------------------------------------------------------------------------------


def _get(p: _Probe, check: str, path: str) -> httpx.Response:
    response = p.http.get(path)
    if response.status_code == 401:
        raise ConformanceError(check, f"GET {path} answered 401: the server requires a bearer token",
                               "pass token=... to check_server")
    return response


def _health(p: _Probe) -> str:
    response = p.http.get("/health")
    fix = 'answer GET /health with 200 {"status": "healthy"} once the server is ready'
    if response.status_code != 200:
        raise ConformanceError("health", f"GET /health answered {response.status_code}", fix)
    body = response.json()
    if not isinstance(body, dict) or body.get("status") != "healthy":
        raise ConformanceError("health", f"GET /health answered {body!r:.100}", fix)
    return "200 healthy"


def _metadata(p: _Probe) -> str:
    response = _get(p, "metadata", "/metadata")
    if response.status_code != 200:
        raise ConformanceError("metadata", f"GET /metadata answered {response.status_code}",
                               "serve the environment's EnvInfo at GET /metadata")
    body = response.json()
    missing = [key for key in _METADATA_KEYS if not isinstance(body, dict) or key not in body]
    if missing:
        raise ConformanceError("metadata", f"GET /metadata lacks {', '.join(missing)}",
                               f"answer with every OpenEnv metadata key: {', '.join(_METADATA_KEYS)}")
    return f"{body['name']} {body['version']}"


def _schema(p: _Probe) -> str:
    response = _get(p, "schema", "/schema")
    fix = "serve the action, observation and state JSON schemas at GET /schema"
    if response.status_code != 200:
        raise ConformanceError("schema", f"GET /schema answered {response.status_code}", fix)
    body = response.json()
    missing = [key for key in ("action", "observation", "state")
               if not isinstance(body, dict) or not isinstance(body.get(key), dict)]
    if missing:
        raise ConformanceError("schema", f"GET /schema lacks a {', '.join(missing)} schema", fix)
    p.schema = body
    action = p.core().action_data(p.sample_action)
    return "action, observation and state schemas served; " + _match("schema", "sample action", action, body["action"])


def _auth(p: _Probe) -> str:
    if p.token is None:
        raise _Skip("no token given, so auth was not checked")
    fix = "with a token set, require 'Authorization: Bearer <token>' on every route but /health"
    with _http_client(p.url, None, p.timeout) as anonymous:
        if anonymous.get("/health").status_code != 200:
            raise ConformanceError("auth", "GET /health without a token was refused",
                                   "leave /health open: containers and validators poll it")
        status = anonymous.get("/metadata").status_code
        if status != 401:
            raise ConformanceError("auth", f"GET /metadata without a token answered {status}, not 401", fix)
    try:
        with p.raw(p.core(anonymous=True), corral=False):
            pass
    except CorralError as exc:
        if exc.code != "UNAUTHORIZED":
            raise
    else:
        raise ConformanceError("auth", "a WebSocket without a token was accepted", fix)
    return "requests without the token are refused with 401; /health stays open"


# -- episodes through the real client -------------------------------------------------------------------


def _episode(p: _Probe) -> str:
    fix = "pass a sample_action this environment accepts, or fix the environment's reset and step"
    with p.client() as env:
        try:
            try:
                p.reset(env, p.seed)
                p.seedable = True
            except SeedNotSupported:
                p.seedable = False
                p.reset(env)
            result = env.step(p.sample_action)
            state = env.state()
        except CorralError as exc:
            raise ConformanceError("episode", f"reset and a step with the sample action failed: {exc.code}: {exc}",
                                   fix) from exc
        dialect = env.dialect
    notes = [f"reset and step over {dialect}"]
    if p.schema is None:
        notes.append("schemas not checked: /schema failed")
    else:
        notes.append(_match("episode", "observation", result.observation.model_dump(mode="json"),
                            p.schema["observation"]))
        notes.append(_match("episode", "state", state.model_dump(mode="json"), p.schema["state"]))
    return "; ".join(notes)


def _trajectory(p: _Probe) -> list[dict[str, Any]]:
    with p.client() as env:
        result = p.reset(env, p.seed)
        runs = [result]
        for _ in range(p.steps):
            if result.done:
                break
            result = env.step(p.sample_action)
            runs.append(result)
    return [{"observation": r.observation.model_dump(mode="json"), "reward": r.reward,
             "terminated": r.terminated, "truncated": r.truncated} for r in runs]


def _seed(p: _Probe) -> str:
    try:
        if p.seedable is False:
            raise SeedNotSupported("seeds refused")
        first, second = _trajectory(p), _trajectory(p)
    except SeedNotSupported as exc:
        raise _Skip("the environment refuses seeds (seedable = False)") from exc
    diff = first_difference(first, second)
    if diff is not None:
        raise ConformanceError("seed", f"two sessions with seed {p.seed} and the same actions differ (entry 0 is "
                               f"the reset, entry n step n): {diff}",
                               "derive every random choice from the seed given to reset, or set seedable = False")
    return f"two sessions with seed {p.seed} saw the same {len(first) - 1}-step episode"


def _isolation(p: _Probe) -> str:
    fix = "keep one environment instance per session; never share episode state between instances"
    with p.client() as a:
        p.reset(a)
        try:
            b = p.client(wait=min(p.timeout, 1.0)).connect()
        except CapacityReached as exc:
            raise _Skip("the server admits one session at a time") from exc
        with b:
            p.reset(b)
            a.step(p.sample_action)
            counts = (a.state().step_count, b.state().step_count)
            if counts != (1, 0):
                raise ConformanceError("isolation", f"after one step in session A only, the step counts of "
                                       f"A and B are {counts}, not (1, 0)", fix)
            b.step(p.sample_action)
            counts = (a.state().step_count, b.state().step_count)
            if counts != (1, 1):
                raise ConformanceError("isolation", f"after one step in each session, the step counts of A "
                                       f"and B are {counts}, not (1, 1)", fix)
    return "two concurrent sessions counted their steps apart"


# -- error codes, over raw compat frames ---------------------------------------------------------------


Frame = Callable[[_Probe, ClientCore[Any, Any]], "dict[str, Any] | str"]


def _error_check(code: str, what: str, make: Frame, *, reset_first: bool) -> Callable[[_Probe], str]:
    """A check that ``make``'s frame (sent after a reset when ``reset_first``) gets error ``code``."""
    def check(p: _Probe) -> str:
        core = p.core()
        name = f"error:{code}"
        with p.raw(core, corral=False) as ws:
            if reset_first:
                core.check(p.ask(ws, core, p.reset_frame(core)), "observation")
            reply = p.ask(ws, core, make(p, core))
            try:
                core.check(reply, str(reply.get("type")))
                got = f"a {reply.get('type')!r} reply"
            except CorralError as exc:
                got = exc.code
            if got != code:
                raise ConformanceError(name, f"{what} got {got}, not an error with code {code}",
                                       f"answer it with {{\"type\": \"error\", \"data\": {{\"code\": \"{code}\", "
                                       "\"message\": ...}}")
            after = p.ask(ws, core, core.request("state"))
            if after.get("type") != "state":
                raise ConformanceError(name, f"after {code} the session did not answer a state request",
                                       f"keep the session open after {code}")
        return f"{what} → {code}; the session stayed open"

    return check


# -- resume (corral/1) ---------------------------------------------------------------------------------


def _resume(p: _Probe) -> str:
    fix = ("keep a session whose link drops for its lease, and reattach it when a client reconnects with "
           "X-Corral-Resume-Session and X-Corral-Resume-Token")
    core = p.core()
    with p.raw(core, corral=True) as ws:
        if not core.corral:
            raise _Skip("the server speaks only OpenEnv's dialect (no corral.v1 subprotocol)")
        core.check(p.ask(ws, core, p.reset_frame(core)), "observation")
        first = core.result(core.check(
            p.ask(ws, core, core.request("step", core.action_data(p.sample_action))), "observation"))
        with contextlib.suppress(OSError):
            ws.socket.shutdown(socket.SHUT_RDWR)  # drop the link without a closing handshake
    session = core.session_id
    with contextlib.ExitStack() as stack:
        try:
            ws = stack.enter_context(p.raw(core, corral=True, resume=True))
        except CorralError as exc:
            raise ConformanceError("resume", f"reconnecting to session {session!r} failed: {exc.code}: {exc}",
                                   fix) from exc
        if core.hello.get("session") != session or not core.hello.get("resumed"):
            raise ConformanceError("resume", f"the hello after resuming names session {core.hello.get('session')!r}"
                                   f" (resumed={core.hello.get('resumed')!r}), not {session!r}", fix)
        before = core.state(core.check(p.ask(ws, core, core.request("state")), "state")).step_count
        if first.done:  # the sample action ended the episode: go on with a fresh one on the same session
            core.check(p.ask(ws, core, p.reset_frame(core)), "observation")
        core.check(p.ask(ws, core, core.request("step", core.action_data(p.sample_action))), "observation")
        after = core.state(core.check(p.ask(ws, core, core.request("state")), "state")).step_count
        expected = (1, 1 if first.done else 2)
        if (before, after) != expected:
            raise ConformanceError("resume", f"step_count was {before} after resuming and {after} after one more "
                                   f"step; expected {expected[0]} then {expected[1]}", fix)
        _refuses_wrong_token(p, session)
        core.check(p.ask(ws, core, core.request("close")), "closed")
    return "the episode went on after the link dropped; a wrong resume token was refused"


def _refuses_wrong_token(p: _Probe, session: str | None) -> None:
    intruder = p.core()
    intruder.session_id, intruder.resume_token = session, "not-the-token"
    try:
        with p.raw(intruder, corral=True, resume=True):
            pass
    except CorralError as exc:
        if exc.code != "RESUME_REJECTED":
            raise
        return
    raise ConformanceError("resume", "a resume with a wrong token was accepted",
                           "compare the resume token in constant time and refuse a wrong one with RESUME_REJECTED")


_CHECKS: list[tuple[str, Callable[[_Probe], str]]] = [
    ("health", _health),
    ("metadata", _metadata),
    ("schema", _schema),
    ("auth", _auth),
    ("episode", _episode),
    ("seed", _seed),
    ("isolation", _isolation),
    ("error:INVALID_JSON", _error_check("INVALID_JSON", "a frame that is not JSON",
                                        lambda p, core: "{not json", reset_first=False)),
    ("error:UNKNOWN_TYPE", _error_check("UNKNOWN_TYPE", "a frame of an unknown type",
                                        lambda p, core: core.request("corral_check_unknown"), reset_first=False)),
    ("error:VALIDATION_ERROR", _error_check("VALIDATION_ERROR", "a step whose action is not an object",
                                            lambda p, core: core.request("step", "not-an-action"),
                                            reset_first=True)),
    ("error:RESET_NEEDED", _error_check("RESET_NEEDED", "a step before any reset",
                                        lambda p, core: core.request("step", core.action_data(p.sample_action)),
                                        reset_first=False)),
    ("resume", _resume),
]
