"""Images without a registry: a Debian base image made here, and environment images built FROM it.

The base image is a ``mmdebstrap`` root filesystem (variant minbase, Python 3 and venv, no documentation)
made from this machine's own apt sources and settings, turned into an image with ``docker import`` and
tagged ``corral/base:<corral version>-py<X.Y>``; its tarball is kept in the cache folder so a lost image
comes back in seconds. An environment image adds one virtual environment at ``/opt/corral`` holding
Corral, the environment's packages and their dependencies, installed with ``--no-index`` from wheels
prepared on the host (``pip wheel`` for local projects, ``pip download`` of binary wheels for the image's
Python and platform, pinned by default to the versions this interpreter has installed). It runs as the
unprivileged user 10001 and serves ``corral.runtime.child`` from ``/run/corral/spec.json`` (the Docker
runtime mounts that folder). Nothing is pulled from any registry.

Builds are cached by content: every input (the base image, the sources of each local package, the
requirements and their pins, the recipe) goes into a digest stored as a label, and a build whose digest
an image already carries returns at once. The inputs of a local package are its metadata files and its
``src/`` folder, or its whole folder less version control, caches, tests and build output when it has no
``src/``. Progress goes to a ``progress(stage, message)`` callback.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .._version import __version__
from ..errors import RuntimeFailed, RuntimeUnavailable, UsageError

#: Bump when the recipes below change, so cached images are rebuilt.
RECIPE = 1
BASE_REPOSITORY = "corral/base"
BASE_PACKAGES = ("python3", "python3-venv")
#: The unprivileged user environment images run as (made in the base image).
USER_ID = 10001
VENV = "/opt/corral"
APP = "/opt/app"
#: The folder the Docker runtime mounts for the server's socket and spec file.
INSIDE = "/run/corral"
COMMAND = ("python", "-I", "-B", "-u", "-m", "corral.runtime.child", f"{INSIDE}/spec.json")

LABEL_ENV = "dev.corral.env"
LABEL_INPUTS = "dev.corral.inputs"
LABEL_BASE_KEY = "dev.corral.base-key"
LABEL_PYTHON = "dev.corral.python"
LABEL_GLIBC = "dev.corral.glibc"
LABEL_STAGE = "dev.corral.stage"

_EXCLUDED_DIRS = {".git", ".hg", ".venv", "venv", "__pycache__", "build", "dist", ".cache", ".mypy_cache",
                  ".ruff_cache", ".pytest_cache", ".tox", "node_modules", "tests", "docs", "benchmarks"}
_METADATA_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "README.md", "README.rst", "README", "LICENSE")

#: ``progress(stage, message)``: stages are ``base``, ``wheels``, ``build`` and ``done``.
Progress = Callable[[str, str], None]


def _quiet(stage: str, message: str) -> None:
    pass


@dataclass(frozen=True)
class BuiltImage:
    """An image that exists in the daemon: its tag and id, and whether this call found it already built."""

    tag: str
    id: str
    cached: bool
    seconds: float
    size_mb: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """What goes into an image FROM the base: local projects (built into wheels), more requirements from the
    package index, pins (None: this interpreter's installed versions), files copied to /opt/app, the default
    environment (a label the Docker runtime reads) and the command (default: serve ``corral.runtime.child``)."""

    packages: tuple[Path, ...] = ()
    requirements: tuple[str, ...] = ()
    constraints: tuple[str, ...] | None = None
    files: tuple[tuple[str, Path], ...] = ()
    env: str | None = None
    command: tuple[str, ...] = COMMAND
    include_corral: bool = True


def cache_dir() -> Path:
    """Where build inputs are kept: ``$XDG_CACHE_HOME/corral``, else ``~/.cache/corral``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "corral"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_image(env: str | None = None, *, packages: Sequence[str | Path] = (), requirements: Sequence[str] = (),
                files: Mapping[str, str | Path] | None = None, tag: str | None = None, client: Any = None,
                progress: Progress | None = None) -> BuiltImage:
    """Build (or find, when nothing changed) the image serving ``env`` (a built-in name or
    ``module:Class``), with the local projects in ``packages`` and ``requirements`` installed beside Corral,
    and ``files`` (name in the image: host path) copied to /opt/app, which is on the import path (so a
    single-module environment needs no packaging).

    The tag defaults to ``corral/<env>:<input digest>``. Raises RuntimeUnavailable when Docker or
    mmdebstrap is missing, RuntimeFailed when a step fails (with the end of its output).
    """
    recipe = Recipe(packages=tuple(Path(p).resolve() for p in packages), requirements=tuple(requirements),
                    files=tuple((name, Path(path).resolve()) for name, path in sorted((files or {}).items())),
                    env=env)
    return build_recipe(recipe, tag=tag, client=client, progress=progress)


def build_recipe(recipe: Recipe, *, tag: str | None = None, client: Any = None,
                 progress: Progress | None = None) -> BuiltImage:
    """Build (or find) the image for ``recipe``; see :func:`build_image`."""
    from .docker import connect

    started = time.monotonic()
    client = client or connect()
    report = progress or _quiet
    base = base_image(client=client, progress=report)
    projects = ([_corral_project()] if recipe.include_corral else []) + list(recipe.packages)
    for project in projects:
        if not (project / "pyproject.toml").exists() and not (project / "setup.py").exists():
            raise UsageError(f"{project} is not a Python project (no pyproject.toml or setup.py)")
    constraints = recipe.constraints if recipe.constraints is not None else _host_pins(projects)
    key = _digest([RECIPE, base.id, recipe.requirements, constraints, [str(p) for p in recipe.files],
                   recipe.env, recipe.command, *(_tree_digest(p) for p in projects),
                   *(_file_digest(path) for _, path in recipe.files)])
    default_tag = tag is None
    tag = tag or f"corral/{_slug(recipe.env or (projects[-1].name if projects else 'image'))}:{key[:12]}"
    cached = _up_to_date(client, key, tag, report, started)
    if cached is not None:
        return cached

    with tempfile.TemporaryDirectory(prefix="corral-build-") as context_dir:
        context = Path(context_dir)
        wheels = context / "wheels"
        wheels.mkdir()
        labels = client.images.get(base.id).labels or {}
        names = _prepare_wheels(wheels, projects, recipe.requirements, constraints, labels, report)
        for name, path in recipe.files:
            shutil.copy2(path, context / name)
        (context / "Dockerfile").write_text(_dockerfile(base.tag, key, names, recipe, labels.get(LABEL_PYTHON)))
        report("build", f"building {tag}")
        try:
            _docker_build(client, context, tag, report)
        finally:
            with contextlib.suppress(Exception):
                client.images.prune(filters={"dangling": True, "label": f"{LABEL_STAGE}=build-{key}"})
    if default_tag:
        _remove_superseded(client, _split_tag(tag)[0], key)
    result = _built(client, tag, cached=False, started=started)
    report("done", f"built {tag} ({result.size_mb:.0f} MB) in {result.seconds:.1f} s")
    return result


def base_image(*, client: Any = None, progress: Progress | None = None, suite: str | None = None) -> BuiltImage:
    """The base image (Debian minbase with Python), made with mmdebstrap and ``docker import`` when missing."""
    from .docker import connect

    started = time.monotonic()
    client = client or connect()
    report = progress or _quiet
    suite = suite or _host_suite()
    sources = _host_sources(suite)
    aptopts = _host_aptopts()
    key = _digest([RECIPE, suite, _base_options(aptopts), *((str(s), s.read_text()) for s in sources)])[:16]
    found = _find(client, {LABEL_BASE_KEY: key}, name=BASE_REPOSITORY)
    if found is not None and found.tags:
        return _built(client, found.tags[0], cached=True, started=started)
    tarball = cache_dir() / "base" / f"{suite}-{key}.tar"
    if not tarball.exists():
        _mmdebstrap(tarball, suite, sources, aptopts, report)
    python, glibc = _rootfs_facts(tarball)
    tag = f"{BASE_REPOSITORY}:{__version__}-py{python}"
    report("base", f"importing {tarball.name} as {tag}")
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8",
        f"LABEL {LABEL_BASE_KEY}={key} {LABEL_PYTHON}={python} {LABEL_GLIBC}={glibc}",
        'CMD ["python3"]',
    ]
    try:
        client.api.import_image_from_file(str(tarball), repository=BASE_REPOSITORY, tag=_split_tag(tag)[1],
                                          changes=changes)
    except Exception as exc:
        raise RuntimeFailed(f"docker import of {tarball} failed: {exc}") from exc
    return _built(client, tag, cached=False, started=started)


# -- the base image ---------------------------------------------------------------------------------


def _host_suite() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.partition("=")[2].strip().strip('"')
    raise RuntimeUnavailable("cannot tell this machine's Debian release (no VERSION_CODENAME in /etc/os-release); "
                             "pass suite= to base_image")


def _host_sources(suite: str) -> list[Path]:
    """This machine's apt source files that name ``suite`` (mmdebstrap copies them into the new system)."""
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list")),
                  *sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    found = []
    for path in candidates:
        with contextlib.suppress(OSError):
            text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
            if re.search(rf"\b{re.escape(suite)}\b", text):
                found.append(path)
    if not found:
        raise RuntimeUnavailable(f"no apt source of this machine names {suite!r}; mmdebstrap needs one")
    return found


def _host_aptopts() -> list[str]:
    """The apt settings of this machine that decide whether its sources can be reached (proxies, validity)."""
    try:
        dump = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    keep = re.compile(r"^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy(::\S+)?) ")
    return sorted(line for line in dump.splitlines() if keep.match(line))


def _mmdebstrap(tarball: Path, suite: str, sources: list[Path], aptopts: list[str], report: Progress) -> None:
    binary = shutil.which("mmdebstrap")
    if binary is None:
        raise RuntimeUnavailable("building the base image needs mmdebstrap: run scripts/system-deps mmdebstrap "
                                 "(Debian's 'mmdebstrap' package)")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial.tar")
    argv = [binary, *_base_options(aptopts)]
    merged = Path("/usr/share/mmdebstrap/hooks/merged-usr")
    if merged.is_dir():  # a merged /usr without the usrmerge package (which drags in perl)
        argv.append(f"--hook-dir={merged}")
    argv += [suite, str(partial), *map(str, sources)]
    report("base", f"mmdebstrap {suite} (minbase, {', '.join(BASE_PACKAGES)})")
    lines = _run(argv, "base", report, "mmdebstrap")
    if not partial.exists():
        raise RuntimeFailed("mmdebstrap made no tarball; its output ends with:\n" + "\n".join(lines[-20:]))
    partial.rename(tarball)
    for stale in tarball.parent.glob(f"{suite}-*.tar"):
        if stale != tarball:
            stale.unlink(missing_ok=True)


def _base_options(aptopts: list[str]) -> list[str]:
    """mmdebstrap's options for the base image (part of its cache key)."""
    hooks = [
        f'echo "corral:x:{USER_ID}:{USER_ID}:corral:/tmp:/usr/sbin/nologin" >> "$1/etc/passwd"',
        f'echo "corral:x:{USER_ID}:" >> "$1/etc/group"',
        'rm -rf "$1"/var/cache/apt/*.bin "$1"/var/log/apt "$1"/var/log/dpkg.log "$1"/usr/share/zoneinfo/right '
        '"$1"/usr/share/info/dir',
    ]
    return ["--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
            *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "info", "locale", "lintian")),
            *(f"--aptopt={opt}" for opt in aptopts), *(f"--customize-hook={hook}" for hook in hooks)]


def _rootfs_facts(tarball: Path) -> tuple[str, str]:
    """The Python version (``3.11``) and glibc version (``2.36``) inside a root filesystem tarball."""
    python = glibc = None
    with tarfile.open(tarball) as archive:
        for member in archive:
            name = member.name.lstrip("./")
            match = re.fullmatch(r"usr/bin/python(3\.\d+)", name)
            if match:
                python = match.group(1)
            elif name == "var/lib/dpkg/status":
                handle = archive.extractfile(member)
                text = handle.read().decode() if handle else ""
                found = re.search(r"^Package: libc6\n(?:.+\n)*?Version: (\d+\.\d+)", text, re.MULTILINE)
                glibc = found.group(1) if found else None
    if python is None or glibc is None:
        raise RuntimeFailed(f"{tarball} has no Python 3 or no glibc; delete it to rebuild the base image")
    return python, glibc


# -- environment images ------------------------------------------------------------------------------


def _corral_project() -> Path:
    root = Path(__file__).resolve().parents[3]
    pyproject = root / "pyproject.toml"
    if not pyproject.exists() or 'name = "corral"' not in pyproject.read_text():
        raise UsageError("building images needs Corral's source tree (this Corral is not installed from one)")
    return root


def _host_pins(projects: Iterable[Path]) -> tuple[str, ...]:
    """``name==version`` for every distribution this interpreter has, except the projects being built."""
    local = {_normalize(p.name) for p in projects} | {"corral"}
    pins = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and _normalize(name) not in local:
            pins.add(f"{_normalize(name)}=={dist.version}")
    return tuple(sorted(pins))


def _prepare_wheels(wheels: Path, projects: list[Path], requirements: Sequence[str], constraints: Sequence[str],
                    base_labels: dict[str, str], report: Progress) -> list[str]:
    """Fill ``wheels`` with everything to install; return the requirement names to install."""
    python = base_labels.get(LABEL_PYTHON, "3.11")
    glibc_minor = int(base_labels.get(LABEL_GLIBC, "2.36").split(".")[1])
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    names: list[str] = []
    if projects:
        report("wheels", f"building wheels of {', '.join(_project_name(p) for p in projects)}")
        _run([*pip, "wheel", "--no-deps", "--quiet", "-w", str(wheels), *map(str, projects)], "wheels", report,
             "pip wheel")
        names = sorted({_normalize(w.name.split("-")[0]) for w in wheels.glob("*.whl")})
    pins = [pin for pin in constraints if _normalize(pin.split("==")[0]) not in names]
    (wheels.parent / "constraints.txt").write_text("\n".join(pins) + "\n")
    machine = platform.machine()
    platforms = [f"manylinux_2_{minor}_{machine}" for minor in range(glibc_minor, 4, -1)]
    report("wheels", f"downloading binary wheels for Python {python} ({machine}, glibc 2.{glibc_minor})")
    _run([*pip, "download", "--quiet", "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
          "--abi", f"cp{python.replace('.', '')}", *(f"--platform={p}" for p in platforms), "-d", str(wheels),
          "-c", str(wheels.parent / "constraints.txt"), *map(str, sorted(wheels.glob("*.whl"))), *requirements],
         "wheels", report, "pip download")
    return names + list(requirements)


def _dockerfile(base: str, key: str, names: Sequence[str], recipe: Recipe, python: str | None) -> str:
    install = " ".join(f"'{name}'" for name in names)
    app_path = f" && echo {APP} > {VENV}/lib/python{python or '3'}/site-packages/corral-app.pth" if recipe.files else ""
    lines = [
        f"FROM {base} AS build",
        f"LABEL {LABEL_STAGE}=build-{key}",
        "COPY wheels /wheels",
        f"RUN python3 -m venv {VENV} && {VENV}/bin/python -m pip install --no-index --no-cache-dir --quiet "
        f"--disable-pip-version-check --no-warn-script-location --find-links /wheels {install} "
        f"&& {VENV}/bin/python -m pip uninstall --yes --quiet pip setuptools{app_path}",
        f"FROM {base}",
        f"COPY --from=build {VENV} {VENV}",
        *(f"COPY {name} {APP}/{name}" for name, _ in recipe.files),
        f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp "
        "LANG=C.UTF-8 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MALLOC_ARENA_MAX=2",
        "WORKDIR /tmp",
        f"USER {USER_ID}:{USER_ID}",
        f"LABEL {LABEL_INPUTS}={key}" + (f" {LABEL_ENV}={_quote(recipe.env)}" if recipe.env else ""),
        f"CMD {orjson.dumps(list(recipe.command)).decode()}",
    ]
    return "\n".join(lines) + "\n"


def _docker_build(client: Any, context: Path, tag: str, report: Progress) -> None:
    tail: list[str] = []
    try:
        for chunk in client.api.build(path=str(context), tag=tag, rm=True, forcerm=True, network_mode="none",
                                      decode=True):
            if "error" in chunk:
                raise RuntimeFailed(f"building {tag} failed: {chunk['error'].strip()}; the build output ends "
                                    "with:\n" + "\n".join(tail[-15:]))
            text = str(chunk.get("stream", "")).strip()
            if text:
                tail.append(text)
                if text.startswith("Step "):
                    report("build", text)
    except RuntimeFailed:
        raise
    except Exception as exc:
        raise RuntimeFailed(f"building {tag} failed: {exc}") from exc


# -- helpers -------------------------------------------------------------------------------------


def _run(argv: list[str], stage: str, report: Progress, what: str) -> list[str]:
    """Run a build step, passing its output lines to ``report``; RuntimeFailed with its tail on failure."""
    lines: list[str] = []
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace") as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            if line and not line.startswith("WARNING: Location"):
                lines.append(line)
                report(stage, line)
    if process.returncode != 0:
        raise RuntimeFailed(f"{what} failed (status {process.returncode}); its output ends with:\n"
                            + "\n".join(lines[-20:]))
    return lines


def _find(client: Any, labels: dict[str, str], name: str | None = None) -> Any:
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    found = client.images.list(name=name, filters=filters)
    return found[0] if found else None


def _up_to_date(client: Any, key: str, tag: str, report: Progress, started: float) -> BuiltImage | None:
    """The image already built from the inputs ``key``, tagged ``tag`` too; None if there is none."""
    found = _find(client, {LABEL_INPUTS: key})
    if found is None:
        return None
    if tag not in found.tags:
        found.tag(*_split_tag(tag))
    report("done", f"{tag} is up to date")
    return _built(client, tag, cached=True, started=started)


def _remove_superseded(client: Any, repository: str, key: str) -> None:
    """Remove earlier builds under the same default repository (their inputs changed); skip images in use."""
    for image in client.images.list(name=repository, filters={"label": LABEL_INPUTS}):
        if (image.labels or {}).get(LABEL_INPUTS) != key:
            for tag in image.tags:
                with contextlib.suppress(Exception):
                    client.images.remove(tag, noprune=False)


def _built(client: Any, tag: str, *, cached: bool, started: float) -> BuiltImage:
    image = client.images.get(tag)
    return BuiltImage(tag=tag, id=image.id, cached=cached, seconds=time.monotonic() - started,
                      size_mb=image.attrs.get("Size", 0) / 1e6, labels=dict(image.labels or {}))


def _digest(parts: Iterable[Any]) -> str:
    return hashlib.sha256(orjson.dumps(list(parts), default=str)).hexdigest()


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _EXCLUDED_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if not name.endswith((".pyc", ".pyo")):
                yield Path(folder) / name


def _tree_digest(project: Path) -> str:
    """The digest of what a local project's wheel is made from (see the module docstring)."""
    digest = hashlib.sha256()
    if (project / "src").is_dir():
        paths = [project / name for name in _METADATA_FILES if (project / name).is_file()]
        paths += list(_walk(project / "src"))
    else:
        paths = list(_walk(project))
    for path in paths:
        digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _project_name(project: Path) -> str:
    with contextlib.suppress(OSError):
        found = re.search(r'^name\s*=\s*"([^"]+)"', (project / "pyproject.toml").read_text(), re.MULTILINE)
        if found:
            return found.group(1)
    return project.name


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().split(":")[0]).strip("-") or "image"


def _split_tag(tag: str) -> tuple[str, str]:
    repository, sep, version = tag.rpartition(":")
    if not sep or "/" in version:
        return tag, "latest"
    return repository, version


def _quote(value: str) -> str:
    return orjson.dumps(value).decode()
