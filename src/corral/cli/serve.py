"""``corral serve``: an environment (built-in, package folder, entry point, ``module:Class``) or an OpenEnv
package's own ASGI app, optionally restarted on code changes (``--reload``)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console

from ..errors import UsageError
from ..server import ServerConfig

if TYPE_CHECKING:
    from ..package import EnvPackage

#: How ``--reload`` tells the server process what to serve: it builds the app itself after every restart.
RELOAD_ENV = "CORRAL_SERVE_ENV"
RELOAD_CONFIG = "CORRAL_SERVE_CONFIG"
#: Files whose change restarts a ``--reload`` server.
RELOAD_INCLUDES = ["*.py", "corral.yaml", "openenv.yaml"]


def serve_env(env: str, *, package: EnvPackage | None, host: str, port: int | None, uds: str | None, workers: int,
              config: ServerConfig, log_level: str, reload: bool, console: Console) -> None:
    """Serve ``env`` until interrupted (see the ``serve`` command's help for the options)."""
    port = port if port is not None else (package.manifest.port if package is not None else 8000)
    where = f"unix:{uds}" if uds else f"http://{host}:{port}"
    if reload and workers > 1:
        raise UsageError("--reload restarts one server process; leave out --workers")
    if package is not None and package.manifest.environment is None:
        _serve_app(package, host=host, port=port, uds=uds, workers=workers, config=config, log_level=log_level,
                   reload=reload, where=where, console=console)
        return
    from ..envs import resolve, target
    from ..server import serve as run_server

    env_cls = resolve(env)
    console.print(f"[bold]corral[/] serving [cyan]{env_cls.info.name}[/] on {where} (ws: /ws)"
                  + (" — restarting on changes" if reload else ""))
    if reload:
        os.environ[RELOAD_ENV] = str(package.root) if package is not None else env
        os.environ[RELOAD_CONFIG] = orjson.dumps(dataclasses.asdict(config)).decode()
        _run_reloading("corral.cli.serve:reload_app", factory=True, dirs=_watched(package), host=host, port=port,
                       uds=uds, config=config, log_level=log_level)
        return
    run_server(target(env) if workers > 1 else env_cls, host=host, port=port, uds=uds, workers=workers,
               config=config, log_level=log_level)


def reload_app() -> Any:
    """The app of a ``--reload`` server process, built from what ``corral serve`` put in its environment.

    The environment is resolved afresh in every new process, so a changed manifest takes effect too.
    """
    from ..server import create_app

    spec = os.environ.get(RELOAD_ENV)
    if not spec:
        raise UsageError(f"reload_app is the factory of 'corral serve --reload' and needs ${RELOAD_ENV}")
    config = ServerConfig(**orjson.loads(os.environ.get(RELOAD_CONFIG, "{}")))
    return create_app(spec, config)


def _serve_app(package: EnvPackage, *, host: str, port: int, uds: str | None, workers: int, config: ServerConfig,
               log_level: str, reload: bool, where: str, console: Console) -> None:
    """An OpenEnv package with only ``app:``: its own ASGI app, as it is, on uvicorn."""
    import uvicorn

    from ..server.serve import uvicorn_config

    app = package.manifest.app
    assert app is not None  # a manifest without 'environment' has 'app' (read_manifest insists)
    if config.token is not None:
        raise UsageError(f"{package.manifest_file.name} names an ASGI app ({app}), which corral serves as it is: "
                         "--token cannot protect it. Serve it without a token on 127.0.0.1, or give the package an "
                         "'environment' so that corral's server runs it")
    if workers > 1:
        raise UsageError(f"{package.manifest_file.name} names an ASGI app ({app}); serve it with one worker")
    console.print(f"[bold]corral[/] serving the ASGI app [cyan]{app}[/] of {package.name} on {where}"
                  + (" — restarting on changes" if reload else ""))
    package.activate()
    if reload:
        _run_reloading(app, factory=False, dirs=_watched(package), host=host, port=port, uds=uds, config=config,
                       log_level=log_level)
        return
    asgi = package.import_target(app, "app")
    uvicorn.Server(uvicorn_config(asgi, host=host, port=port, uds=uds, config=config, log_level=log_level)).run()


def _watched(package: EnvPackage | None) -> list[str]:
    return [str(package.root)] if package is not None else [str(Path.cwd())]


def _run_reloading(app: str, *, factory: bool, dirs: list[str], host: str, port: int, uds: str | None,
                   config: ServerConfig, log_level: str) -> None:
    """uvicorn's reloader: a supervisor that watches ``dirs`` (with watchfiles) and restarts a fresh server
    process, which imports ``app`` anew, whenever a watched file changes."""
    import uvicorn
    from uvicorn.supervisors import ChangeReload

    from ..server.serve import uvicorn_config
    from ..server.wsprotocol import CorralWebSocketProtocol

    uv = uvicorn_config(app, host=host, port=port, uds=uds, config=config, log_level=log_level, factory=factory,
                        reload=True, reload_dirs=dirs, reload_includes=RELOAD_INCLUDES)
    if factory:
        uv.ws = CorralWebSocketProtocol  # the factory makes a CorralApp; uvicorn_config saw only its name
    sock = uv.bind_socket()
    ChangeReload(uv, target=uvicorn.Server(uv).run, sockets=[sock]).run()
