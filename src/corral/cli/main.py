"""``corral``: serve environments and roll out episodes.

Environment variables are read here and nowhere else: ``CORRAL_TOKEN`` (bearer token).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..errors import CorralError

app = typer.Typer(
    name="corral",
    help="Fast, isolated, OpenEnv-compatible RL environments for agentic LLM training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
state = {"debug": False}


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    state["debug"] = debug


@app.command()
def init(
    name: Annotated[str, typer.Argument(help="The environment's name: lower case, digits, '-' or '_' (my-game).")],
    directory: Annotated[Path | None, typer.Option("--dir", help="Where to write it (default: ./NAME).")] = None,
    package: Annotated[str | None, typer.Option(help="The Python package name (default: NAME with '_').")] = None,
    description: Annotated[str | None, typer.Option(help="One line for the manifest and README.")] = None,
    force: Annotated[bool, typer.Option(help="Write into a folder that is not empty (never overwrites).")] = False,
) -> None:
    """Scaffold an environment package: models, environment, typed client, policies, corral.yaml, README,
    Dockerfile and tests that pass as made."""
    from ..package import scaffold

    target = directory or Path(name)
    written = scaffold(name, target, package=package, description=description, force=force)
    out = Console()
    for path in written:
        out.print(f"  [green]created[/] {path}")
    out.print(f"\n[bold]{name}[/] is ready in {target}/. Next:\n"
              f"  corral validate {target}      static checks and a live conformance run\n"
              f"  corral serve {target} --reload\n"
              f"  corral build {target} && corral push {target} --to 127.0.0.1:5000")


@app.command()
def serve(
    env: Annotated[str, typer.Argument(help="A built-in name (echo, guess) or 'package.module:Class'.")],
    host: Annotated[str, typer.Option(help="Interface to bind. Keep 127.0.0.1 unless you mean to expose it.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port (OpenEnv's container contract uses 8000).")] = 8000,
    uds: Annotated[str | None, typer.Option(help="Listen on this Unix socket instead of TCP.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes sharing the port.")] = 1,
    token: Annotated[
        str | None,
        typer.Option(envvar="CORRAL_TOKEN", help="Require 'Authorization: Bearer TOKEN' on every route but /health."),
    ] = None,
    capacity: Annotated[
        int | None, typer.Option(min=1, help="Max concurrent sessions (default: from the open-files limit).")
    ] = None,
    lease: Annotated[float, typer.Option(help="Seconds a session outlives its dropped connection.")] = 60.0,
    idle_timeout: Annotated[float, typer.Option(help="Seconds before an idle connected session is closed.")] = 900.0,
    step_timeout: Annotated[float, typer.Option(help="Default and maximum step deadline, seconds.")] = 300.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve an environment over HTTP and WebSocket (OpenEnv-compatible, plus corral/1)."""
    from ..envs import resolve
    from ..server import ServerConfig
    from ..server import serve as run_server

    env_cls = resolve(env)
    config = ServerConfig(capacity=capacity, lease_s=lease, idle_timeout_s=idle_timeout,
                          step_timeout_s=step_timeout, token=token)
    where = f"unix:{uds}" if uds else f"http://{host}:{port}"
    console.print(f"[bold]corral[/] serving [cyan]{env_cls.info.name}[/] on {where} (ws: /ws)")
    run_server(env if workers > 1 else env_cls, host=host, port=port, uds=uds, workers=workers,
               config=config, log_level=log_level)


@app.command()
def demo(
    env: Annotated[str, typer.Option(help="Built-in environment to roll out.")] = "guess",
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to roll out.")] = 200,
    policy: Annotated[str, typer.Option(help="'scripted' (the env's best policy) or 'random'.")] = "scripted",
    seed: Annotated[int, typer.Option(help="First episode seed; episode i uses seed+i.")] = 0,
    runtime: Annotated[str, typer.Option(help="Where the server runs: sandbox, subprocess, inprocess or docker.")] = (
        "sandbox"
    ),
) -> None:
    """Start a server in a sandbox, roll out episodes against it, and print a summary (the README's main job)."""
    from .demo import run_demo

    run_demo(env=env, episodes=episodes, policy=policy, seed=seed, console=Console(), runtime=runtime)


@app.command()
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")] = False,
    min_age: Annotated[float, typer.Option(help="Leave folders and cgroups younger than this many seconds.")] = 60.0,
) -> None:
    """Remove what dead owners left behind: containers (by their dev.corral labels), sandbox and server
    processes, folders and cgroups. Servers of live owners are never touched."""
    from rich.table import Table

    from ..runtime.gc import collect_garbage

    garbage = collect_garbage(dry_run=dry_run, min_age_s=min_age)
    out = Console()
    if not garbage:
        out.print("nothing to collect: no orphaned containers, processes, folders or cgroups")
    else:
        table = Table(title="would remove" if dry_run else "removed")
        table.add_column("kind")
        table.add_column("what")
        for kind, items in (("container", garbage.containers), ("process", garbage.processes),
                            ("folder", garbage.folders), ("cgroup", garbage.cgroups)):
            for item in items:
                table.add_row(kind, str(item))
        out.print(table)
    for note in garbage.notes:
        out.print(f"[yellow]note:[/] {note}")


def main() -> None:
    try:
        app()
    except CorralError as exc:
        if state["debug"]:
            raise
        console.print(f"[red]error:[/] {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
