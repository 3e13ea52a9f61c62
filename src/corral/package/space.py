"""A Hugging Face Space made from an environment package (``corral push PATH --to hf-space:OWNER/NAME``).

The Space folder holds the package's source (less version control, caches and build output), a
``README.md`` whose YAML front matter makes it a Docker Space serving on port 8000 (``sdk: docker``,
``app_port``), and a self-contained ``Dockerfile``: a Space builds it without Corral's local base image,
``FROM python:X.Y-slim`` (this interpreter's Python), installing the wheels of Corral and the package
shipped in ``wheels/`` with their dependencies from the Space's package index, pinned by
``wheels/constraints.txt`` to the versions this interpreter has. The container runs as user 1000 (what
Spaces expect) and serves with ``corral serve NAME --host 0.0.0.0 --port 8000``.

Uploading goes through ``huggingface_hub`` (the ``hub`` extra): ``create_repo(..., repo_type="space",
space_sdk="docker", exist_ok=True)`` then ``upload_folder``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import RuntimeFailed, TransportError, UsageError
from .loader import EnvPackage, load_package

PREFIX = "hf-space:"
APP_PORT = 8000
#: Folders of a package that never go into a Space.
SKIPPED = frozenset({".git", ".hg", ".venv", "venv", "__pycache__", "build", "dist", "wheels", ".cache",
                     ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tox", "node_modules"})
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")

DOCKERFILE = """\
# The {name} environment as a Hugging Face Space (Docker SDK), made by `corral push`. Self-contained: wheels/
# holds Corral and this package; their dependencies come from the package index, pinned by
# wheels/constraints.txt to the versions they were tested with.
FROM python:{python}-slim
RUN useradd --create-home --uid 1000 user
COPY wheels/ /tmp/wheels/
RUN python -m venv /opt/corral \\
 && /opt/corral/bin/pip install --no-cache-dir --disable-pip-version-check -c /tmp/wheels/constraints.txt \\
    /tmp/wheels/*.whl {requirements}\\
 && rm -rf /tmp/wheels
ENV PATH=/opt/corral/bin:$PATH PYTHONUNBUFFERED=1 HOME=/home/user
USER user
WORKDIR /home/user
EXPOSE {port}
# OpenEnv's container contract: port {port}, GET /health answers 200 once ready.
CMD ["corral", "serve", "{name}", "--host", "0.0.0.0", "--port", "{port}"]
"""


@dataclass(frozen=True)
class SpaceTarget:
    """``hf-space:OWNER/NAME``, parsed."""

    repo_id: str

    @classmethod
    def parse(cls, destination: str) -> SpaceTarget:
        repo_id = destination.removeprefix(PREFIX)
        if not destination.startswith(PREFIX) or not _REPO_ID.match(repo_id):
            raise UsageError(f"{destination!r} is not a Space: write hf-space:OWNER/NAME (letters, digits, "
                             "'-', '_' or '.')")
        return cls(repo_id)


@dataclass(frozen=True)
class UploadedSpace:
    """Where the Space went: its id and URL on the hub, and the commit that holds the upload."""

    repo_id: str
    url: str
    commit: str | None


def is_space(destination: str) -> bool:
    return destination.startswith(PREFIX)


def front_matter(package: EnvPackage) -> dict[str, object]:
    """The Space's README metadata (the hub reads ``sdk`` and ``app_port`` to build and route it)."""
    manifest = package.manifest
    matter: dict[str, object] = {
        "title": manifest.name,
        "emoji": "🎯",
        "colorFrom": "blue",
        "colorTo": "green",
        "sdk": "docker",
        "app_port": APP_PORT,
        "pinned": False,
        "tags": ["corral", "openenv", "reinforcement-learning"],
    }
    if manifest.description:
        # The hub refuses a short_description over 60 characters.
        matter["short_description"] = manifest.description[:60]
    return matter


def prepare_space(path: str | os.PathLike[str] | EnvPackage, folder: str | os.PathLike[str]) -> Path:
    """Write the Space for the package at ``path`` into ``folder`` (made, or emptied of a previous Space
    only when it holds one); return the folder."""
    package = path if isinstance(path, EnvPackage) else load_package(path)
    if not (package.root / "pyproject.toml").is_file() and not (package.root / "setup.py").is_file():
        raise UsageError(f"{package.root} is not a Python project (no pyproject.toml or setup.py), so a Space "
                         "cannot install it")
    if package.manifest.port != APP_PORT:
        raise UsageError(f"{package.manifest_file} sets port {package.manifest.port}; a Space made by corral "
                         f"serves on {APP_PORT} (remove 'port')")
    target = Path(folder).resolve()
    if target == package.root or package.root in target.parents:
        raise UsageError(f"the Space folder {target} must not be inside the package {package.root}")
    if target.exists() and any(target.iterdir()):
        if not (target / "wheels").is_dir() or not (target / "README.md").is_file():
            raise UsageError(f"{target} exists and is not a Space made by corral; choose an empty folder")
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    _copy_source(package.root, target)
    _build_wheels(package.root, target / "wheels")
    (target / "wheels" / "constraints.txt").write_text("\n".join(_pins(package.root)) + "\n")
    readme = package.root / "README.md"
    body = readme.read_text(encoding="utf-8") if readme.is_file() else f"# {package.name}\n"
    matter = yaml.safe_dump(front_matter(package), sort_keys=False, allow_unicode=True)
    (target / "README.md").write_text(f"---\n{matter}---\n\n{body}", encoding="utf-8")
    requirements = "".join(f"'{r}' " for r in package.manifest.requirements)
    (target / "Dockerfile").write_text(DOCKERFILE.format(
        name=package.name, port=APP_PORT, python=f"{sys.version_info.major}.{sys.version_info.minor}",
        requirements=requirements))
    return target


def upload_space(folder: str | os.PathLike[str], target: SpaceTarget, *, token: str | None = None,
                 endpoint: str | None = None, private: bool = False, message: str = "corral push") -> UploadedSpace:
    """Create the Space (kept when it exists) and upload ``folder`` to it as one commit."""
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError
    except ImportError as exc:
        raise UsageError("pushing to a Space needs huggingface_hub: pip install 'corral[hub]'") from exc

    api = HfApi(endpoint=endpoint, token=token)
    try:
        url = api.create_repo(target.repo_id, repo_type="space", space_sdk="docker", exist_ok=True,
                              private=True if private else None)  # None: the owner's default
        commit = api.upload_folder(folder_path=str(folder), repo_id=target.repo_id, repo_type="space",
                                   commit_message=message)
    except HfHubHTTPError as exc:
        raise TransportError(f"the hub at {api.endpoint} refused the Space {target.repo_id}: "
                             f"{_first_line(exc)}") from exc
    except Exception as exc:
        if not _from_http_client(exc):
            raise
        raise TransportError(f"cannot reach the hub at {api.endpoint}: {_first_line(exc)}") from exc
    return UploadedSpace(repo_id=target.repo_id, url=str(url), commit=getattr(commit, "oid", None))


def _copy_source(root: Path, target: Path) -> None:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED and not d.endswith(".egg-info"))
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            source = Path(folder) / name
            destination = target / source.relative_to(root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def _build_wheels(root: Path, wheels: Path) -> None:
    from ..runtime.images import _corral_project

    wheels.mkdir()
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--no-deps", "--quiet", "-w",
            str(wheels), str(_corral_project()), str(root)]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise RuntimeFailed(f"building the wheels of Corral and {root} failed; pip's output ends with:\n{tail}")


def _pins(root: Path) -> list[str]:
    from ..runtime.images import _corral_project, _host_pins

    return list(_host_pins([_corral_project(), root]))


def _from_http_client(exc: BaseException) -> bool:
    """Whether ``exc`` is a connection failure (an OSError, or an error of the HTTP client huggingface_hub
    uses, whichever that is in the installed version)."""
    module = type(exc).__module__.split(".")[0]
    return isinstance(exc, OSError) or module in ("httpx", "httpx2", "httpcore", "requests", "urllib3")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
