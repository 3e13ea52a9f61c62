"""``corral build PATH``: the image of an environment package, with a live display of what the build does."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..package import load_package
from ..runtime.images import BuiltImage
from ..runtime.package_image import build_package

STAGES = {"base": "base image", "wheels": "wheels", "build": "docker build", "done": "done"}


class StageDisplay:
    """A spinner line per build stage showing its latest output line; a finished stage stays as one line."""

    def __init__(self, progress: Progress, header: str) -> None:
        self.progress = progress
        self.header: str | None = header
        self.stage: str | None = None
        self.task = progress.add_task("starting", stage="", total=None)

    def __call__(self, stage: str, message: str) -> None:
        if self.header is not None:  # printed once the package passed its checks
            self.progress.console.print(self.header, highlight=False)
            self.header = None
        if stage == "done":
            return
        if stage != self.stage:
            if self.stage is not None:
                self.progress.console.print(f"  [green]✓[/] {STAGES.get(self.stage, self.stage)}")
            self.stage = stage
            self.progress.update(self.task, stage=STAGES.get(stage, stage))
        self.progress.update(self.task, description=message.replace("\n", " ")[:100])

    def finish(self) -> None:
        if self.stage is not None:
            self.progress.console.print(f"  [green]✓[/] {STAGES.get(self.stage, self.stage)}")


class PlainDisplay:
    """The stages as plain lines, for output that is not a terminal."""

    def __init__(self, console: Console, header: str) -> None:
        self.console = console
        self.header: str | None = header
        self.stage: str | None = None

    def __call__(self, stage: str, message: str) -> None:
        if self.header is not None:
            self.console.print(self.header, highlight=False)
            self.header = None
        if stage != self.stage and stage != "done":
            self.stage = stage
            self.console.print(f"  {STAGES.get(stage, stage)}: {message}", highlight=False, markup=False)


def build_with_progress(path: Path, *, tag: str | None, no_cache: bool, quiet: bool, console: Console) -> BuiltImage:
    """Build the package's image; unless ``quiet``, show the stages on ``console`` as they run."""
    package = load_package(path)
    if quiet:
        return build_package(package, tag=tag, no_cache=no_cache)
    columns = (SpinnerColumn(), TextColumn("[bold cyan]{task.fields[stage]:<12}"),
               TextColumn("{task.description}", markup=False), TimeElapsedColumn())
    header = f"building {package.name} {package.manifest.version} from {package.root}"
    if not console.is_terminal:  # a log: one line per stage, no live display
        return build_package(package, tag=tag, no_cache=no_cache, progress=PlainDisplay(console, header))
    with Progress(*columns, console=console, transient=True) as progress:
        display = StageDisplay(progress, header)
        built = build_package(package, tag=tag, no_cache=no_cache, progress=display)
        display.finish()
    return built


def build_command(path: Path, *, tag: str | None, no_cache: bool, quiet: bool) -> None:
    """What ``corral build`` does: build, then say what was made (only the tag with ``--quiet``)."""
    built = build_with_progress(path, tag=tag, no_cache=no_cache, quiet=quiet, console=Console(stderr=True))
    out = Console()
    if quiet:
        out.print(built.tag, highlight=False)
    elif built.cached:
        out.print(f"[bold]{built.tag}[/] is up to date (image {built.id[7:19]}, {built.size_mb:.0f} MB)")
    else:
        out.print(f"[bold]{built.tag}[/] built in {built.seconds:.1f} s (image {built.id[7:19]}, "
                  f"{built.size_mb:.0f} MB)\n  run it:   docker run --rm -p 127.0.0.1:8000:8000 {built.tag}\n"
                  f"  push it:  corral push {path} --to 127.0.0.1:5000")
