"""``corral push PATH --to DESTINATION``: an OCI registry (``HOST[:PORT][/NAMESPACE]``) or a Hugging Face
Space (``hf-space:OWNER/NAME``)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn

from ..package import load_package
from ..package.space import SpaceTarget, is_space, prepare_space, upload_space
from ..runtime.registry import push_image, registry_repository
from .build import build_with_progress


class LayerDisplay:
    """One progress bar per image layer, fed by the daemon's push status."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, layer: str, status: str, current: int, total: int) -> None:
        if not layer or len(layer) != 12:  # not a layer: "The push refers to repository ...", the final digest
            return
        task = self.tasks.get(layer)
        if task is None:
            task = self.tasks[layer] = self.progress.add_task(layer, status=status, total=None)
        if total:
            self.progress.update(task, status=status, completed=current, total=total)
        elif status in ("Pushed", "Layer already exists", "Mounted from"):
            done = self.progress.tasks[task].total or 1
            self.progress.update(task, status=status, completed=done, total=done)
        else:
            self.progress.update(task, status=status)


def push_command(path: Path, *, to: str, tag: str | None, no_cache: bool, quiet: bool, token: str | None,
                 endpoint: str | None, private: bool, dry_run: bool, space_dir: Path | None) -> None:
    err = Console(stderr=True)
    out = Console()
    if is_space(to):
        _push_space(path, SpaceTarget.parse(to), token=token, endpoint=endpoint, private=private,
                    dry_run=dry_run, space_dir=space_dir, err=err, out=out)
        return
    package = load_package(path)
    registry_repository(to, package.name)  # a malformed --to fails before a build
    built = build_with_progress(path, tag=tag, no_cache=no_cache, quiet=quiet, console=err)
    version = package.manifest.version
    if dry_run:
        out.print(f"would push {built.tag} as {registry_repository(to, package.name)}:{version}", highlight=False)
        return
    if quiet:
        pushed = push_image(built.tag, to, name=package.name, version=version)
    else:
        columns = (TextColumn("  {task.description}"), TextColumn("{task.fields[status]:<20}"), BarColumn(),
                   DownloadColumn())
        err.print(f"[bold]pushing[/] {built.tag} to {to}")
        with Progress(*columns, console=err, transient=True) as progress:
            pushed = push_image(built.tag, to, name=package.name, version=version, progress=LayerDisplay(progress))
    if quiet:
        out.print(pushed.reference, highlight=False)
    else:
        out.print(f"[bold]{pushed.reference}[/] pushed" + (f" ({pushed.digest})" if pushed.digest else "")
                  + f"\n  pull it:  docker pull {pushed.reference}", highlight=False)


def _push_space(path: Path, target: SpaceTarget, *, token: str | None, endpoint: str | None, private: bool,
                dry_run: bool, space_dir: Path | None, err: Console, out: Console) -> None:
    package = load_package(path)
    scratch = None
    if space_dir is None:
        if dry_run:
            space_dir = Path(tempfile.mkdtemp(prefix=f"corral-space-{package.name}-"))
        else:
            scratch = space_dir = Path(tempfile.mkdtemp(prefix="corral-space-"))
    try:
        with err.status(f"preparing the Space for {package.name} in {space_dir}"):
            folder = prepare_space(package, space_dir)
        files = sum(1 for p in folder.rglob("*") if p.is_file())
        if dry_run:
            out.print(f"the Space for {target.repo_id} is in {folder} ({files} files); nothing was uploaded",
                      highlight=False)
            return
        with err.status(f"uploading {files} files to the Space {target.repo_id}"):
            uploaded = upload_space(folder, target, token=token, endpoint=endpoint, private=private,
                                    message=f"corral push {package.name} {package.manifest.version}")
        out.print(f"[bold]{uploaded.repo_id}[/] uploaded ({files} files): {uploaded.url}", highlight=False)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
