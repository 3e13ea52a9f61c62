"""``create_app``: one ASGI application per environment class."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from ..environment import EnvClass
from .auth import authorized
from .config import ServerConfig
from .http import HttpRoutes, JSONResponse
from .metrics import Metrics
from .sessions import SessionManager
from .websocket import deny, websocket_endpoint

_OPEN_PATHS = frozenset({"/health"})

class CorralApp:
    """The ASGI app: ``/ws`` goes straight to the WebSocket handler, everything else to Starlette routes."""

    def __init__(self, env_cls: EnvClass, config: ServerConfig | None = None) -> None:
        self.env_cls = env_cls
        self.config = config or ServerConfig()
        self.metrics = Metrics()
        self.manager = SessionManager(env_cls, self.config, self.metrics)
        self._http = Starlette(routes=HttpRoutes(self.manager).routes(), lifespan=self._lifespan)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.manager.start()
        try:
            yield
        finally:
            await self.manager.shutdown()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            if scope["path"] == "/ws":
                await websocket_endpoint(self.manager, scope, receive, send)
            else:
                await receive()
                await deny(scope, send, 404, {"code": "NOT_FOUND", "message": "WebSocket endpoint is /ws"}, [])
            return
        if kind == "http" and scope["path"] not in _OPEN_PATHS and not authorized(scope, self.config.token):
            response = JSONResponse(
                {"detail": "missing or wrong bearer token; send 'Authorization: Bearer <token>'",
                 "code": "UNAUTHORIZED"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self._http(scope, receive, send)

def create_app(env: EnvClass | str, config: ServerConfig | None = None, **options: Any) -> CorralApp:
    """Build the ASGI app serving ``env`` (a class, a built-in name, or ``"module:Class"``).

    Keyword ``options`` are :class:`ServerConfig` fields, for convenience.
    """
    from ..envs import resolve

    if options:
        config = ServerConfig(**{**(config.__dict__ if config else {}), **options})
    return CorralApp(resolve(env) if isinstance(env, str) else env, config)

ASGIScope = MutableMapping[str, Any]
