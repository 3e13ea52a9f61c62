"""Drive an OpenEnv-compatible server with openenv-core 0.3.0's own client; print one JSON object.

Run under the peer venv (``scripts/peer-venv`` prints its python)::

    PEER_PY peer/client_driver.py --url ws://127.0.0.1:P --scenario NAME [--max-sessions N]
        [--raise-on TEXT] [--steps 2000] [--timeout 5] [--tool NAME --action JSON ...]
    PEER_PY peer/client_driver.py --jobs FILE

``--url`` is the server's base URL, ``ws://`` or ``http://`` (no ``/ws`` suffix). Exit status 0
whenever the scenario ran to completion, whatever the server answered. Stdout is exactly one
JSON object, keys sorted; every object has ``scenario``, ``url`` and ``openenv_core`` (version).

A *result* is ``{"observation": dict, "reward": float|null, "done": bool}``, as the client's
``StepResult`` held it. A *probe* (raw WebSocket, fresh connection per probe) is ``{"name",
"sent": str|null, "reply": object|null, "reply_timeout": bool, "usable_after": bool,
"close_code": int|null, "close_reason": str|null}``; ``usable_after`` means a following
``{"type":"state"}`` got a state reply. A probe whose WebSocket upgrade was refused also has
``"refused": {"status": int, "body": JSON value or text}`` (and ``reply`` null). An *http*
entry is ``{"name", "method", "path", "status": int, "body": JSON value or text}``.

Scenarios and their extra keys:

- ``basic``: ``async`` and ``sync`` (the same run through ``GenericEnvClient`` and its
  ``.sync()`` wrapper), each ``{"reset": result, "steps": [result x3], "state": dict,
  "client_error": str, "state_after_error": dict}``. Reset uses ``seed=42,
  episode_id="ep-basic"``; steps send messages ``"hello"``, ``""``, ``"corral"``;
  ``client_error`` is the text of the ``RuntimeError`` the client raised for
  ``step({"message": 123})``.
- ``errors``: ``probes``: [probe], frames sent with ``websockets`` directly, named and ordered
  as in ``ERROR_FRAMES`` below, plus ``env_raises`` when ``--raise-on`` is given.
- ``http``: ``requests``: [http] named as in ``HTTP_CASES`` (plus ``step_env_raises`` with
  ``--raise-on``), then ``openapi``, whose body is summarised as ``{"openapi", "title",
  "version", "paths"}``.
- ``mcp``: ``http``: [http] for ``POST /mcp``; ``ws_frames``: [probe] of ``{"type":"mcp"}``
  frames on ``/ws``; ``ws_mcp_route``: the reply to a JSON-RPC request on ``/mcp`` (or
  ``{"refused": ...}`` when the server has no such WebSocket route).
- ``mcp_tools`` (against ``echo_server.py --mcp``): ``client`` (``MCPToolClient``: ``reset``
  result, ``tools`` [{name, description, input_schema}], ``echo_message`` and
  ``echo_with_length`` return values, ``unknown_tool_error``, ``state``), ``ws_frames``
  [probe] of raw ``list_tools``/``call_tool`` steps and a ``{"type":"mcp"}`` tools/call,
  ``http`` [http] for ``POST /mcp`` tools/list and tools/call.
- ``capacity`` (needs ``--max-sessions N``): ``opened`` (sessions that reset fine, N),
  ``extra`` (probe of connection N+1: ``reply`` is the frame it got before the close, or
  ``refused`` when the server refuses the upgrade itself),
  ``client_error`` (``"module.Class: text"`` of what ``GenericEnvClient.reset()`` raised at
  capacity; timing decides between ``RuntimeError`` and websockets' ``ConnectionClosedOK``),
  ``http_reset_status`` (``POST /reset`` at capacity), ``slot_freed`` (a new session works
  after one closed).
- ``tools`` (against a server whose environment has MCP tools that ``{"type":"mcp"}`` frames
  bind to the WebSocket's session, e.g. ``corral serve guess``; needs ``--tool NAME`` and
  ``--action JSON``, optional ``--reset JSON`` kwargs, ``--tool-args JSON`` and ``--bad-reset JSON``,
  reset kwargs the environment raises on): ``client`` (``GenericEnvClient``: ``bad_reset_error``,
  ``RuntimeError`` text or null, then ``reset`` result, ``step`` result, ``state``),
  ``ws_frames`` (one connection: ``{"name", "sent", "reply"}`` for reset, step, ``mcp``
  tools/list, tools/call of the tool, of reserved ``reset`` and of unknown ``nope``, then state),
  ``production`` (``MCPToolClient`` with ``use_production_mode``, i.e. ``POST /mcp``:
  ``tools`` [{name, description, input_schema}], ``call`` return value,
  ``unknown_tool_error``).
- ``bench``: ``steps``, and ``async``/``sync``/``raw`` step round-trip stats in microseconds
  ``{"p50_us", "p90_us", "p99_us", "mean_us"}`` (raw = bare ``websockets`` send/recv).

``--jobs FILE`` (``-``: stdin) runs many scenarios in one process, since importing openenv takes
~3.5 s and most scenarios well under one: FILE holds a JSON object ``{name: [argv...]}``; stdout is
one JSON object ``{name: output}``, each output exactly what ``client_driver.py argv...`` prints,
or ``{"error": traceback}`` when that scenario raised.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from openenv.core import GenericEnvClient, MCPToolClient
from openenv.core.client_types import StepResult
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

Json = dict[str, Any]
MESSAGES = ("hello", "", "corral")


def _bases(url: str) -> tuple[str, str]:
    """Return (ws_base, http_base) for a ws:// or http:// base URL."""
    url = url.rstrip("/")
    scheme, rest = url.split("://", 1)
    secure = scheme in ("https", "wss")
    return ("wss://" if secure else "ws://") + rest, ("https://" if secure else "http://") + rest


def _result(r: StepResult[Json]) -> Json:
    return {"observation": r.observation, "reward": r.reward, "done": r.done}


def _refusal(exc: InvalidStatus) -> Json:
    """The HTTP response that refused a WebSocket upgrade."""
    body: Any = exc.response.body or b""
    try:
        body = json.loads(body)
    except ValueError:
        body = body.decode(errors="replace")
    return {"status": exc.response.status_code, "body": body}


# --- basic ------------------------------------------------------------------------------


async def _basic_async(url: str) -> Json:
    async with GenericEnvClient(base_url=url) as env:
        out: Json = {"reset": _result(await env.reset(seed=42, episode_id="ep-basic"))}
        out["steps"] = [_result(await env.step({"message": m})) for m in MESSAGES]
        out["state"] = await env.state()
        try:
            await env.step({"message": 123})
            out["client_error"] = None
        except RuntimeError as exc:
            out["client_error"] = str(exc)
        out["state_after_error"] = await env.state()
    return out


def _basic_sync(url: str) -> Json:
    with GenericEnvClient(base_url=url).sync() as env:
        out: Json = {"reset": _result(env.reset(seed=42, episode_id="ep-basic"))}
        out["steps"] = [_result(env.step({"message": m})) for m in MESSAGES]
        out["state"] = env.state()
        try:
            env.step({"message": 123})
            out["client_error"] = None
        except RuntimeError as exc:
            out["client_error"] = str(exc)
        out["state_after_error"] = env.state()
    return out


def basic(args: argparse.Namespace) -> Json:
    """Reset, three steps and state through openenv's GenericEnvClient, async and sync."""
    return {"async": asyncio.run(_basic_async(args.url)), "sync": _basic_sync(args.url)}


# --- raw websocket probes ----------------------------------------------------------------


async def _recv(ws: ClientConnection, timeout: float) -> tuple[Any, bool]:
    """Receive one frame: (parsed JSON or text, timed_out). Raises ConnectionClosed."""
    try:
        raw = await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        return None, True
    try:
        return json.loads(raw), False
    except (ValueError, TypeError):
        return repr(raw), False


async def probe(ws_url: str, name: str, frame: str | bytes | None, timeout: float) -> Json:
    """Send one frame (None: send nothing) on a fresh connection; record the reply and
    whether the session survives. A reply already queued when the server closed is kept."""
    sent = frame if frame is None or isinstance(frame, str) else repr(frame)
    out: Json = {"name": name, "sent": sent, "reply": None, "reply_timeout": False}
    usable = False
    try:
        ws = await connect(ws_url, open_timeout=timeout)
    except InvalidStatus as exc:
        return {**out, "refused": _refusal(exc), "close_code": None, "close_reason": None, "usable_after": False}
    async with ws:
        try:
            if frame is not None:
                await ws.send(frame)
        except ConnectionClosed:
            pass
        try:
            out["reply"], out["reply_timeout"] = await _recv(ws, timeout)
            await ws.send(json.dumps({"type": "state"}))
            reply, _ = await _recv(ws, timeout)
            usable = isinstance(reply, dict) and reply.get("type") == "state"
        except ConnectionClosed:
            pass
        if not usable:
            await asyncio.wait_for(ws.wait_closed(), timeout)
        out["close_code"] = None if usable else ws.close_code
        out["close_reason"] = None if usable else ws.close_reason or None
    out["usable_after"] = usable
    return out


ERROR_FRAMES: list[tuple[str, str | bytes]] = [
    ("invalid_json", "{not json"),
    ("unknown_type", '{"type": "bogus"}'),
    ("missing_type", '{"data": {}}'),
    ("step_wrong_field_type", '{"type": "step", "data": {"message": 123}}'),
    ("step_missing_field", '{"type": "step", "data": {}}'),
    ("step_extra_field", '{"type": "step", "data": {"message": "x", "bogus": 1}}'),
    ("step_wrapped_action", '{"type": "step", "data": {"action": {"message": "x"}}}'),
    ("step_without_data", '{"type": "step"}'),
    ("frame_with_id", '{"type": "state", "id": "1"}'),
    ("reset_without_data", '{"type": "reset"}'),
    ("reset_negative_seed", '{"type": "reset", "data": {"seed": -1}}'),
    ("reset_data_not_object", '{"type": "reset", "data": [1]}'),
    ("json_array", "[1, 2]"),
    ("json_string", '"state"'),
    ("json_null", "null"),
    ("binary_frame", b'{"type": "state"}'),
    ("close", '{"type": "close"}'),
]


async def _errors(args: argparse.Namespace) -> Json:
    ws_url = _bases(args.url)[0] + "/ws"
    frames = list(ERROR_FRAMES)
    if args.raise_on is not None:
        step = {"type": "step", "data": {"message": args.raise_on}}
        frames.append(("env_raises", json.dumps(step)))
    return {"probes": [await probe(ws_url, n, f, args.timeout) for n, f in frames]}


def errors(args: argparse.Namespace) -> Json:
    """Malformed frames, each on a fresh /ws connection."""
    return asyncio.run(_errors(args))


# --- http ------------------------------------------------------------------------------


def http(base: str, name: str, method: str, path: str, body: Any = None, timeout: float = 5) -> Json:
    """One HTTP request; body None sends nothing, bytes go raw, anything else as JSON."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        parsed = raw.decode(errors="replace")
    return {"name": name, "method": method, "path": path, "status": status, "body": parsed}


HTTP_CASES: list[tuple[str, str, str, Any]] = [
    ("reset_no_body", "POST", "/reset", None),
    ("reset_empty", "POST", "/reset", {}),
    ("reset_seed", "POST", "/reset", {"seed": 7, "episode_id": "ep-http"}),
    ("reset_extra_kwarg", "POST", "/reset", {"seed": 7, "difficulty": "hard"}),
    ("reset_negative_seed", "POST", "/reset", {"seed": -1}),
    ("reset_long_episode_id", "POST", "/reset", {"episode_id": "x" * 256}),
    ("reset_invalid_json", "POST", "/reset", b"{not json"),
    ("step", "POST", "/step", {"action": {"message": "hi"}}),
    ("step_options", "POST", "/step", {"action": {"message": "hi"}, "timeout_s": 1.5, "request_id": "r1"}),
    ("step_wrong_field_type", "POST", "/step", {"action": {"message": 5}}),
    ("step_extra_field", "POST", "/step", {"action": {"message": "hi", "bogus": 1}}),
    ("step_bare_action", "POST", "/step", {"message": "hi"}),
    ("step_invalid_json", "POST", "/step", b"{not json"),
    ("state", "GET", "/state", None),
    ("health", "GET", "/health", None),
    ("metadata", "GET", "/metadata", None),
    ("schema", "GET", "/schema", None),
]


def http_scenario(args: argparse.Namespace) -> Json:
    """Plain HTTP requests against every compat route."""
    base = _bases(args.url)[1]
    cases = list(HTTP_CASES)
    if args.raise_on is not None:
        cases.append(("step_env_raises", "POST", "/step", {"action": {"message": args.raise_on}}))
    out = [http(base, *case, timeout=args.timeout) for case in cases]
    api = http(base, "openapi", "GET", "/openapi.json", timeout=args.timeout)
    body = api["body"]
    api["body"] = {
        "openapi": body.get("openapi"),
        "title": body.get("info", {}).get("title"),
        "version": body.get("info", {}).get("version"),
        "paths": {p: sorted(ops) for p, ops in sorted(body.get("paths", {}).items())},
    }
    return {"requests": [*out, api]}


# --- mcp -------------------------------------------------------------------------------


def _rpc(method: str, params: Any = None, rid: Any = 1) -> Json:
    req: Json = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        req["params"] = params
    return req


async def _mcp(args: argparse.Namespace) -> Json:
    ws_base, base = _bases(args.url)
    cases: list[tuple[str, Any]] = [
        ("tools_list", _rpc("tools/list", {})),
        ("tools_list_no_params", _rpc("tools/list")),
        ("tools_call", _rpc("tools/call", {"name": "echo", "arguments": {"message": "hi"}})),
        ("unknown_method", _rpc("nope/nope", {})),
        ("params_not_object", _rpc("tools/list", [1])),
        ("invalid_request", {"foo": 1}),
        ("parse_error", b"{not json"),
        ("session_create", _rpc("openenv/session/create", {})),
        ("session_close_unknown", _rpc("openenv/session/close", {"session_id": "nope"})),
        ("session_close_missing", _rpc("openenv/session/close", {})),
    ]
    out: Json = {"http": [http(base, n, "POST", "/mcp", b, args.timeout) for n, b in cases]}
    created = next(r["body"] for r in out["http"] if r["name"] == "session_create")
    created = created.get("result") or {} if isinstance(created, dict) else {}
    if "session_id" in created:
        close = _rpc("openenv/session/close", {"session_id": created["session_id"]})
        out["http"].append(http(base, "session_close", "POST", "/mcp", close, args.timeout))
    frames = [
        ("mcp_tools_list", {"type": "mcp", "data": _rpc("tools/list", {})}),
        ("mcp_session_create", {"type": "mcp", "data": _rpc("openenv/session/create", {})}),
        ("mcp_bad_request", {"type": "mcp", "data": {"foo": 1}}),
    ]
    ws_url = ws_base + "/ws"
    out["ws_frames"] = [await probe(ws_url, n, json.dumps(f), args.timeout) for n, f in frames]
    try:
        async with connect(ws_base + "/mcp", open_timeout=args.timeout) as ws:
            await ws.send(json.dumps(_rpc("tools/list", {})))
            out["ws_mcp_route"], _ = await _recv(ws, args.timeout)
    except InvalidStatus as exc:
        out["ws_mcp_route"] = {"refused": _refusal(exc)}
    return out


def mcp(args: argparse.Namespace) -> Json:
    """POST /mcp, {"type":"mcp"} frames on /ws, and the /mcp WebSocket route."""
    return asyncio.run(_mcp(args))


async def _mcp_tools(args: argparse.Namespace) -> Json:
    ws_base, base = _bases(args.url)
    client: Json = {}
    async with MCPToolClient(base_url=args.url) as env:
        reset = await env.reset(seed=1, episode_id="ep-mcp")
        client["reset"] = {"observation": reset.observation.model_dump(), "done": reset.done}
        client["tools"] = [t.model_dump() for t in await env.list_tools()]
        client["echo_message"] = await env.call_tool("echo_message", message="hi")
        client["echo_with_length"] = await env.call_tool("echo_with_length", message="hi")
        try:
            await env.call_tool("nope", message="hi")
            client["unknown_tool_error"] = None
        except RuntimeError as exc:
            client["unknown_tool_error"] = str(exc)
        client["state"] = (await env.state()).model_dump()
    call = {"tool_name": "echo_with_length", "arguments": {"message": "hi"}}
    frames = [
        ("step_list_tools", {"type": "step", "data": {"type": "list_tools"}}),
        ("step_call_tool", {"type": "step", "data": {"type": "call_tool", **call}}),
        ("step_call_unknown", {"type": "step", "data": {"type": "call_tool", "tool_name": "nope"}}),
        (
            "mcp_tools_call",
            {"type": "mcp", "data": _rpc("tools/call", {"name": "echo_message", "arguments": {"message": "hi"}})},
        ),
    ]
    ws_url = ws_base + "/ws"
    probes = [await probe(ws_url, n, json.dumps(f), args.timeout) for n, f in frames]
    rpcs = [
        ("tools_list", _rpc("tools/list", {})),
        ("tools_call", _rpc("tools/call", {"name": "echo_with_length", "arguments": {"message": "hi"}})),
        ("tools_call_unknown", _rpc("tools/call", {"name": "nope", "arguments": {}})),
        ("tools_call_reserved", _rpc("tools/call", {"name": "reset", "arguments": {}})),
    ]
    reqs = [http(base, n, "POST", "/mcp", b, args.timeout) for n, b in rpcs]
    return {"client": client, "ws_frames": probes, "http": reqs}


def mcp_tools(args: argparse.Namespace) -> Json:
    """openenv's MCPToolClient and raw tool frames against an MCPEnvironment server."""
    return asyncio.run(_mcp_tools(args))


# --- tools ----------------------------------------------------------------------------


async def _tools(args: argparse.Namespace) -> Json:
    if args.tool is None or args.action is None:
        raise SystemExit("--scenario tools needs --tool NAME and --action JSON")
    ws_base, _ = _bases(args.url)
    reset_kwargs, action = json.loads(args.reset), json.loads(args.action)
    tool_args = json.loads(args.tool_args)
    client: Json = {}
    async with GenericEnvClient(base_url=args.url) as env:
        client["bad_reset_error"] = None
        if args.bad_reset is not None:
            try:
                await env.reset(**json.loads(args.bad_reset))
            except RuntimeError as exc:
                client["bad_reset_error"] = str(exc)
        client["reset"] = _result(await env.reset(**reset_kwargs))
        client["step"] = _result(await env.step(action))
        client["state"] = await env.state()

    def call(name: str, arguments: Json, rid: int) -> Json:
        return {"type": "mcp", "data": _rpc("tools/call", {"name": name, "arguments": arguments}, rid)}

    frames: list[tuple[str, Json]] = [
        ("reset", {"type": "reset", "data": reset_kwargs}),
        ("step", {"type": "step", "data": action}),
        ("tools_list", {"type": "mcp", "data": _rpc("tools/list", {}, 1)}),
        ("tools_call", call(args.tool, tool_args, 2)),
        ("tools_call_reserved", call("reset", {}, 3)),
        ("tools_call_unknown", call("nope", {}, 4)),
        ("state", {"type": "state"}),
    ]
    ws_frames = []
    async with connect(ws_base + "/ws", open_timeout=args.timeout) as ws:
        for name, frame in frames:
            sent = json.dumps(frame)
            await ws.send(sent)
            reply, _ = await _recv(ws, args.timeout)
            ws_frames.append({"name": name, "sent": sent, "reply": reply})

    production: Json = {}
    async with MCPToolClient(base_url=args.url) as tools:
        tools.use_production_mode = True
        production["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in await tools.list_tools()
        ]
        production["call"] = await tools.call_tool(args.tool, **tool_args)
        try:
            await tools.call_tool("nope")
            production["unknown_tool_error"] = None
        except RuntimeError as exc:
            production["unknown_tool_error"] = str(exc)
    return {"client": client, "ws_frames": ws_frames, "production": production}


def tools(args: argparse.Namespace) -> Json:
    """openenv's clients against an environment whose tools are bound to the episode's session."""
    return asyncio.run(_tools(args))


# --- capacity --------------------------------------------------------------------------


async def _capacity(args: argparse.Namespace) -> Json:
    if args.max_sessions is None:
        raise SystemExit("--scenario capacity needs --max-sessions N")
    ws_base, base = _bases(args.url)
    held = []
    reset = json.dumps({"type": "reset", "data": {}})
    for _ in range(args.max_sessions):
        ws = await connect(ws_base + "/ws", open_timeout=args.timeout)
        await ws.send(reset)
        reply, _ = await _recv(ws, args.timeout)
        if isinstance(reply, dict) and reply.get("type") == "observation":
            held.append(ws)
        else:
            await ws.close()
    out: Json = {"opened": len(held)}
    out["extra"] = await probe(ws_base + "/ws", "extra", None, args.timeout)
    try:
        async with GenericEnvClient(base_url=args.url) as env:
            await env.reset()
        out["client_error"] = None
    except Exception as exc:  # whatever openenv lets escape is the finding
        out["client_error"] = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    out["http_reset_status"] = http(base, "reset", "POST", "/reset", {}, args.timeout)["status"]
    if held:
        await held.pop().close()
        await asyncio.sleep(0.2)
        again = await probe(ws_base + "/ws", "again", reset, args.timeout)
        out["slot_freed"] = (again["reply"] or {}).get("type") == "observation"
    for ws in held:
        await ws.close()
    return out


def capacity(args: argparse.Namespace) -> Json:
    """Hold --max-sessions sessions open and try one more."""
    return asyncio.run(_capacity(args))


# --- bench -----------------------------------------------------------------------------


def _stats(samples_ns: list[int]) -> Json:
    q = statistics.quantiles(samples_ns, n=100)
    return {
        "p50_us": round(statistics.median(samples_ns) / 1e3, 1),
        "p90_us": round(q[89] / 1e3, 1),
        "p99_us": round(q[98] / 1e3, 1),
        "mean_us": round(statistics.fmean(samples_ns) / 1e3, 1),
    }


def _timed(step: Callable[[], Any], n: int, warmup: int = 100) -> list[int]:
    for _ in range(warmup):
        step()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        step()
        samples.append(time.perf_counter_ns() - t0)
    return samples


async def _atimed(step: Callable[[], Any], n: int, warmup: int = 100) -> list[int]:
    for _ in range(warmup):
        await step()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await step()
        samples.append(time.perf_counter_ns() - t0)
    return samples


async def _bench_async(url: str, n: int) -> tuple[list[int], list[int]]:
    async with GenericEnvClient(base_url=url) as env:
        await env.reset()
        client = await _atimed(lambda: env.step({"message": "hello"}), n)
    frame = json.dumps({"type": "step", "data": {"message": "hello"}})
    async with connect(_bases(url)[0] + "/ws") as ws:

        async def raw_step() -> None:
            await ws.send(frame)
            await ws.recv()

        raw = await _atimed(raw_step, n)
    return client, raw


def bench(args: argparse.Namespace) -> Json:
    """Sequential step round trips: async client, sync wrapper, bare websockets."""
    client, raw = asyncio.run(_bench_async(args.url, args.steps))
    with GenericEnvClient(base_url=args.url).sync() as env:
        env.reset()
        sync = _timed(lambda: env.step({"message": "hello"}), args.steps)
    return {"steps": args.steps, "async": _stats(client), "sync": _stats(sync), "raw": _stats(raw)}


SCENARIOS: dict[str, Callable[[argparse.Namespace], Json]] = {
    "basic": basic,
    "errors": errors,
    "http": http_scenario,
    "mcp": mcp,
    "mcp_tools": mcp_tools,
    "capacity": capacity,
    "tools": tools,
    "bench": bench,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--jobs", metavar="FILE", help="run many scenarios: JSON {name: [argv...]}; - for stdin")
    parser.add_argument("--max-sessions", type=int, default=None)
    parser.add_argument("--raise-on", default=None)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--tool", default=None)
    parser.add_argument("--tool-args", default="{}")
    parser.add_argument("--action", default=None)
    parser.add_argument("--reset", default="{}")
    parser.add_argument("--bad-reset", default=None)
    return parser


def run(argv: list[str]) -> Json:
    """Run one scenario from its command line; return what ``main`` prints for it."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.url is None or args.scenario is None:
        parser.error("--url and --scenario are required (or --jobs FILE)")
    result = SCENARIOS[args.scenario](args)
    header = {"scenario": args.scenario, "url": args.url, "openenv_core": version("openenv-core")}
    return {**header, **result}


def run_jobs(source: str) -> Json:
    """Run every job of a ``--jobs`` file in order; a job that raises records its traceback."""
    with open(source) if source != "-" else sys.stdin as f:
        jobs: dict[str, list[str]] = json.load(f)
    out: Json = {}
    for name, argv in jobs.items():
        try:
            out[name] = run(argv)
        except (Exception, SystemExit):
            out[name] = {"error": traceback.format_exc()}
    return out


def main() -> None:
    """Parse flags, run one scenario (or a --jobs file), print its JSON."""
    args, _ = _parser().parse_known_args()
    result = run_jobs(args.jobs) if args.jobs is not None else run(sys.argv[1:])
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
