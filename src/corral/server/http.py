"""HTTP routes: compat ``/reset``, ``/step``, ``/state`` made stateful by ``X-Session-Id``, plus the
read-only routes (``/health``, ``/metadata``, ``/schema``, ``/openapi.json``, ``/metrics``) and ``/mcp``.

Without ``X-Session-Id``, ``/step`` and ``/state`` keep OpenEnv's stateless behaviour (a fresh instance,
thrown away). ``/reset`` always opens a session and names it in the ``X-Session-Id`` response header;
HTTP sessions expire ``lease_s`` after their last request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import CapacityReached, CorralError, InvalidAction
from ..protocol import HEADER_SESSION, Dialect, envelope
from .mcp import INVALID_REQUEST, PARSE_ERROR, handle_jsonrpc, rpc_error
from .openapi import openapi_document
from .sessions import Session, SessionManager

_STATUS = {
    "VALIDATION_ERROR": 422,
    "RESET_NEEDED": 409,
    "SEED_NOT_SUPPORTED": 422,
    "SESSION_ERROR": 404,
    "SESSION_NOT_FOUND": 404,
    "DEADLINE_EXCEEDED": 504,
    "CAPACITY_REACHED": 503,
    "FACTORY_ERROR": 500,
    "EXECUTION_ERROR": 500,
}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(err: CorralError) -> JSONResponse:
    status = _STATUS.get(err.code, 400)
    if err.code == "VALIDATION_ERROR":
        return JSONResponse({"detail": err.details.get("errors", []), "message": err.message}, status_code=422)
    headers = {"Retry-After": "1"} if isinstance(err, CapacityReached) else None
    return JSONResponse({"detail": err.message, "code": err.code, **err.details}, status, headers=headers)


async def _json_body(request: Request, *, required: bool) -> Any:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise _unprocessable("body", "a JSON object body is required")
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _unprocessable("body", f"body is not valid JSON: {exc}") from exc


def _unprocessable(where: str, message: str) -> InvalidAction:
    return InvalidAction(message, details={"errors": [{"type": "value_error", "loc": [where], "msg": message}]})


class HttpRoutes:
    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        env = manager.env_cls
        self._schema = {
            "action": env.action_type.model_json_schema(),
            "observation": env.observation_type.model_json_schema(),
            "state": env.state_type.model_json_schema(),
        }
        self._openapi = openapi_document(env)

    def routes(self) -> list[Route]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/metadata", self.metadata, methods=["GET"]),
            Route("/schema", self.schema, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/reset", self.reset, methods=["POST"]),
            Route("/step", self.step, methods=["POST"]),
            Route("/state", self.state, methods=["GET"]),
            Route("/mcp", self.mcp, methods=["POST"]),
        ]

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "healthy"})

    async def metadata(self, request: Request) -> Response:
        return JSONResponse(self.manager.env_cls.info.model_dump())

    async def schema(self, request: Request) -> Response:
        return JSONResponse(self._schema)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self._openapi)

    async def metrics(self, request: Request) -> Response:
        text = self.manager.metrics.render(self.manager.env_cls.info.name)
        return Response(text, media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def _session(self, request: Request, *, create: bool) -> AsyncIterator[tuple[Session, bool]]:
        """The request's session: named by X-Session-Id, or new. Yields (session, is_new)."""
        manager = self.manager
        sid = request.headers.get(HEADER_SESSION)
        if sid is not None:
            session = manager.get(sid)
            async with session.lock:
                yield session, False
            if session.connection is None:  # a session a WebSocket carries stays attached to it
                session.detached_at = time.monotonic()
            return
        session = await manager.open(by_id=create)
        try:
            async with session.lock:
                yield session, True
        except BaseException:
            await manager.close(session)
            raise
        if not create:
            await manager.close(session)

    async def _guard(self, handler: Callable[[], Awaitable[Response]]) -> Response:
        try:
            return await handler()
        except CorralError as err:
            self.manager.metrics.errors[err.code] += 1
            return error_response(err)

    async def reset(self, request: Request) -> Response:
        async def handle() -> Response:
            body = await _json_body(request, required=False)
            if not isinstance(body, dict):
                raise _unprocessable("body", "the reset body must be a JSON object of reset options")
            async with self._session(request, create=True) as (session, _):
                result = await self.manager.reset(session, body)
            return JSONResponse(envelope(result, Dialect.COMPAT), headers={HEADER_SESSION: session.id})

        return await self._guard(handle)

    async def step(self, request: Request) -> Response:
        async def handle() -> Response:
            body = await _json_body(request, required=True)
            if not isinstance(body, dict) or not isinstance(body.get("action"), dict):
                raise _unprocessable("action", "the step body must be {\"action\": {...}}")
            timeout = body.get("timeout_s")
            if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
                raise _unprocessable("timeout_s", "timeout_s must be a positive number of seconds")
            request_id = body.get("request_id")
            async with self._session(request, create=False) as (session, fresh):
                if fresh:
                    await self.manager.reset(session, {})
                previous = session.recall(request_id) if request_id is not None else None
                if previous is not None:
                    done = previous if isinstance(previous, dict) else await asyncio.shield(previous)
                    return JSONResponse(done, headers={HEADER_SESSION: session.id})
                result = await self.manager.step(session, body["action"], timeout)
                payload = envelope(result, Dialect.COMPAT)
                if request_id is not None:
                    session.remember(request_id, payload, self.manager.config.replay_window)
            headers = None if fresh else {HEADER_SESSION: session.id}
            return JSONResponse(payload, headers=headers)

        return await self._guard(handle)

    async def state(self, request: Request) -> Response:
        async def handle() -> Response:
            async with self._session(request, create=False) as (session, _):
                state = await self.manager.state(session)
            return JSONResponse(state.model_dump(mode="json"))

        return await self._guard(handle)

    async def mcp(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return JSONResponse(rpc_error(None, PARSE_ERROR, f"parse error: {exc}"))
        session = None
        sid = request.headers.get(HEADER_SESSION)
        if sid is not None:
            session = self.manager.sessions.get(sid)
            if session is None or not session.by_id:
                request_id = body.get("id") if isinstance(body, dict) else None
                return JSONResponse(rpc_error(request_id, -32602, f"unknown session {sid!r}"))
        if isinstance(body, list):
            if not body:
                return JSONResponse(rpc_error(None, INVALID_REQUEST, "an empty batch is not a JSON-RPC request"))
            return JSONResponse([await handle_jsonrpc(self.manager, item, session) for item in body])
        return JSONResponse(await handle_jsonrpc(self.manager, body, session))

