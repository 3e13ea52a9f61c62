"""``corral``: serve environments and roll out episodes.

Environment variables are read here and nowhere else: ``CORRAL_TOKEN`` (bearer token), ``HF_TOKEN`` and
``HF_ENDPOINT`` (``corral push --to hf-space:...``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text
from typer.exceptions import TyperException

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
    """Scaffold an environment package that passes validation as made.

    It holds models, the environment, a typed client, policies, corral.yaml, a README, a Dockerfile and tests.
    """
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
    env: Annotated[str, typer.Argument(help="A built-in name (echo, guess), a package folder (or its corral.yaml / "
                                       "openenv.yaml), an installed environment's name, or 'package.module:Class'.")],
    host: Annotated[str, typer.Option(help="Interface to bind. Keep 127.0.0.1 unless you mean to expose it.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int | None, typer.Option(help="TCP port (default: the manifest's, else 8000, OpenEnv's "
                                             "container contract).")] = None,
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
    reload: Annotated[bool, typer.Option("--reload", help="Restart the server when a file of the package (or of "
                                         "this folder) changes; for development.")] = False,
) -> None:
    """Serve an environment over HTTP and WebSocket (OpenEnv-compatible, plus corral/1).

    An OpenEnv package whose openenv.yaml names only an 'app' is served as that ASGI app.
    """
    from ..envs import package_of
    from ..server import ServerConfig
    from .serve import serve_env

    config = ServerConfig(capacity=capacity, lease_s=lease, idle_timeout_s=idle_timeout,
                          step_timeout_s=step_timeout, token=token)
    serve_env(env, package=package_of(env), host=host, port=port, uds=uds, workers=workers, config=config,
              log_level=log_level, reload=reload, console=console)


@app.command()
def validate(
    target: Annotated[str, typer.Argument(help="A package folder (or any name 'serve' takes), a server's URL "
                                          "(http://, ws://, unix://...), or a Docker image.")],
    runtime: Annotated[str, typer.Option(help="Where a package's server runs for the live checks: subprocess, "
                                         "sandbox, inprocess or docker.")] = "subprocess",
    image: Annotated[bool, typer.Option("--image", help="TARGET is a Docker image (when the name is ambiguous).")] = (
        False
    ),
    sample_action: Annotated[str | None, typer.Option(help="The action the checks send to a URL or image, as "
                                                      "JSON (default: made from the server's /schema).")] = None,
    reset_options: Annotated[str | None, typer.Option(help="Keyword arguments every reset of the checks passes to a "
                                                      "URL or image, as a JSON object.")] = None,
    token: Annotated[str | None, typer.Option(envvar="CORRAL_TOKEN", help="Bearer token of the server at a URL.")] = (
        None
    ),
    timeout: Annotated[float, typer.Option(help="Seconds each request may take.")] = 10.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Check a package, server or image: static checks, then a live conformance and determinism run.

    Static: manifest, types, schemas, reserved tool names, policies, a reachable max_reward, deterministic
    episodes. Prints a pass/fail table and exits 1 on any failure.
    """
    from .validate import print_report
    from .validate import validate as run_checks

    report = run_checks(target, runtime=runtime, image=image, sample_action=sample_action, token=token,
                        timeout=timeout, console=console, reset_options=reset_options)
    print_report(report, Console(), as_json=json_output)
    if not report.ok:
        names = ", ".join(check.name for check in report.failures)
        raise CorralError(f"{target} failed {len(report.failures)} of {len(report.checks)} checks ({names})")


@app.command()
def run(
    env: Annotated[str, typer.Argument(help="Anything 'serve' takes: a package folder, a built-in or installed "
                                       "name, or 'package.module:Class'.")],
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to roll out.")] = 10,
    policy: Annotated[str, typer.Option(help="'scripted', 'random', another policy the package names, or "
                                        "'package.module:function'.")] = "random",
    seed: Annotated[int, typer.Option(help="First episode seed; episode i uses seed+i.")] = 0,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Steps before an episode is cut (default: the "
                                                  "manifest's max_steps, else 200).")] = None,
    runtime: Annotated[str | None, typer.Option(help="Where the server runs: sandbox, subprocess, inprocess or "
                                                "docker (default: the manifest's, else sandbox).")] = None,
    record: Annotated[Path | None, typer.Option(help="Write every step (episode, step, action, observation, reward, "
                                                "terminated, truncated, elapsed_s) to this JSON-lines file.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Episodes played at once, each on its own session.")] = 1,
) -> None:
    """Roll out episodes with a policy, with a progress bar and a summary."""
    from .run import run_episodes

    run_episodes(env, episodes=episodes, policy=policy, seed=seed, max_steps=max_steps, runtime=runtime,
                 record=record, concurrency=concurrency, console=Console())


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    suite: Annotated[str | None, typer.Option(help="Run a suite of the checkout's benchmarks/ instead: quick, full "
                                              "(side by side with openenv-core, ~6 min), runtimes or docker; "
                                              "options after -- go to its script.")] = None,
    checkout: Annotated[Path | None, typer.Option(help="The Corral source checkout that holds benchmarks/ "
                                                  "(default: found from here).")] = None,
    env: Annotated[str, typer.Option(help="Built-in mode: the environment to measure.")] = "echo",
    runtime: Annotated[str, typer.Option(help="Built-in mode: where its server runs.")] = "subprocess",
    steps: Annotated[int, typer.Option(min=1, help="Built-in mode: timed steps.")] = 2000,
    sessions: Annotated[int, typer.Option(min=1, help="Built-in mode: sessions batched on one connection.")] = 64,
    json_output: Annotated[bool, typer.Option("--json", help="Built-in mode: also print the numbers as JSON.")] = (
        False
    ),
) -> None:
    """Measure speed: a quick built-in run against echo, or a benchmark suite.

    By default: steps/s, p50/p99 and session open against echo. With --suite, the benchmark scripts of a
    source checkout (full: side by side with openenv-core).
    """
    from .bench import quick_bench, run_suite

    if suite is not None:
        code = run_suite(suite, checkout, list(ctx.args), console)
        if code:
            raise typer.Exit(code)
        return
    if ctx.args:
        raise typer.BadParameter(f"unexpected arguments {' '.join(ctx.args)} (only --suite passes options on)")
    out = Console()
    numbers = quick_bench(env, runtime=runtime, steps=steps, sessions=sessions, console=out)
    if json_output:
        import orjson

        print(orjson.dumps(numbers, option=orjson.OPT_INDENT_2).decode())


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
    """Roll out episodes of a built-in environment in a sandbox and print a summary (the README's main job)."""
    from .demo import run_demo

    run_demo(env=env, episodes=episodes, policy=policy, seed=seed, console=Console(), runtime=runtime)


@app.command()
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")] = False,
    min_age: Annotated[float, typer.Option(help="Leave folders and cgroups younger than this many seconds.")] = 60.0,
) -> None:
    """Remove what dead owners left behind; live owners' servers are never touched.

    Containers (by their dev.corral labels), sandbox and server processes, folders and cgroups.
    """
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


@app.command()
def build(
    path: Annotated[Path, typer.Argument(help="The environment package's folder (corral.yaml and a Dockerfile).")],
    tag: Annotated[
        str | None, typer.Option(help="Image tag (default: the manifest's image, corral-env/NAME:VERSION).")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Rebuild every layer, even when nothing changed.")] = (
        False
    ),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display; print only the tag.")] = False,
) -> None:
    """Build the package's image FROM Corral's local base image.

    The base image is made when missing; an unchanged package is found in the cache at once.
    """
    from .build import build_command

    build_command(path, tag=tag, no_cache=no_cache, quiet=quiet)


@app.command()
def push(
    path: Annotated[Path, typer.Argument(help="The environment package's folder.")],
    to: Annotated[
        str, typer.Option("--to", help="HOST\\[:PORT]\\[/NAMESPACE] (an OCI registry) or hf-space:OWNER/NAME.")
    ],
    tag: Annotated[str | None, typer.Option(help="Local image tag to build (default: the manifest's image).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Rebuild every layer before pushing.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display; print only where it went.")] = (
        False
    ),
    token: Annotated[str | None, typer.Option(envvar="HF_TOKEN", help="Hub token for hf-space (or HF_TOKEN).")] = None,
    endpoint: Annotated[
        str | None, typer.Option(envvar="HF_ENDPOINT", help="Hub URL for hf-space (or HF_ENDPOINT).")
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the Space private.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Prepare (and build) but upload nothing; say where it is.")
    ] = False,
    space_dir: Annotated[
        Path | None, typer.Option(help="Write the Space folder here (default: a temporary folder).")
    ] = None,
) -> None:
    """Push the package's image to an OCI registry, or upload it as a Hugging Face Space.

    The image is built when needed and pushed as REGISTRY/NAME:VERSION; a Space (Docker SDK) builds on its own.
    """
    from .push import push_command

    push_command(path, to=to, tag=tag, no_cache=no_cache, quiet=quiet, token=token, endpoint=endpoint,
                 private=private, dry_run=dry_run, space_dir=space_dir)


def main() -> None:
    """Run the CLI. Every failure ends as one line on stderr and a non-zero exit (``--debug``: the traceback);
    usage errors keep click's message and exit 2; Ctrl-C exits 130 quietly."""
    try:
        code = app(standalone_mode=False)
    except TyperException as exc:  # typer's usage errors (its own copy of click's ClickException, with show())
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            console.print(Text.assemble(("error: ", "red"), exc.format_message()), soft_wrap=True)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:
        if state["debug"]:
            raise
        sys.exit(_fail(exc))
    sys.exit(code if isinstance(code, int) else 0)


def _fail(exc: Exception) -> int:
    """Print ``exc`` as one line; return the exit status."""
    if isinstance(exc, CorralError):
        message = exc.message
    else:
        message = f"{type(exc).__name__}: {exc} (a bug or an unexpected condition; 'corral --debug ...' shows where)"
    one_line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    console.print(Text.assemble(("error: ", "red"), one_line), soft_wrap=True)
    return 1


if __name__ == "__main__":
    main()
