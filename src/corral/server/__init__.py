"""The environment server: one ASGI app per environment."""

from .app import CorralApp, create_app
from .config import ServerConfig
from .serve import serve, uvicorn_config

__all__ = ["CorralApp", "ServerConfig", "create_app", "serve", "uvicorn_config"]
