"""The manifest of an environment package: ``corral.yaml`` (ours) or ``openenv.yaml`` (OpenEnv's).

``corral.yaml`` is strict: an unknown key is an error, so a typo never silently drops a setting. OpenEnv's
``openenv.yaml`` (``spec_version``, ``name``, ``type``, ``runtime``, ``app``, ``port``) is read as it is and
mapped onto the same model; such a package is served as its own ASGI ``app``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import UsageError
from .loader import MANIFEST, OPENENV_MANIFEST

#: ``module.path:Attribute``
TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def _target(value: str | None, what: str) -> str | None:
    if value is not None and not TARGET.match(value):
        raise ValueError(f"{what} must look like 'package.module:Name', not {value!r}")
    return value


class ValidateSettings(BaseModel):
    """How ``corral validate`` drives the environment live."""

    model_config = ConfigDict(extra="forbid")

    #: Seeds for the determinism and reachable-reward runs.
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    #: Keyword options passed to every ``reset``.
    reset_options: dict[str, Any] = Field(default_factory=dict)
    #: The action the conformance checks send; default: the scripted policy's first action.
    sample_action: dict[str, Any] | None = None


class Manifest(BaseModel):
    """What ``corral init`` writes and every other command reads."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    spec_version: Literal[1] = 1
    name: str
    version: str = "0.1.0"
    description: str = ""
    #: The Environment subclass: ``package.module:Class``.
    environment: str | None = None
    #: The typed client: ``package.module:Class``.
    client: str | None = None
    #: OpenEnv packages: the ASGI app to serve as it is (``server.app:app``).
    app: str | None = None
    #: The image tag ``corral build`` makes; default ``corral-env/NAME:VERSION``.
    image: str | None = None
    #: The port a container serves on (OpenEnv's container contract: 8000).
    port: int = Field(default=8000, ge=1, le=65535)
    #: Named policies, ``name: package.module:function``; a function takes (observation, random.Random) and
    #: returns an action. ``scripted`` must reach ``max_reward``.
    policies: dict[str, str] = Field(default_factory=dict)
    #: The best episode return; ``corral validate`` proves the scripted policy reaches it.
    max_reward: float | None = None
    #: Steps after which ``corral run`` and ``corral validate`` give up on an episode.
    max_steps: int = Field(default=200, ge=1)
    #: Where ``corral run`` starts the server by default.
    runtime: str = "sandbox"
    #: Extra requirements for the image (already pinned by the package's own dependencies otherwise).
    requirements: list[str] = Field(default_factory=list)
    validate_: ValidateSettings = Field(default_factory=ValidateSettings, alias="validate")
    #: Which file this came from (not written to it).
    source: str = Field(default=MANIFEST, exclude=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("name must be lower case letters, digits, '-' or '_', starting with a letter")
        return value

    @field_validator("environment", "client", "app")
    @classmethod
    def _targets(cls, value: str | None) -> str | None:
        return _target(value, "this field")

    @field_validator("policies")
    @classmethod
    def _policies(cls, value: dict[str, str]) -> dict[str, str]:
        for name, target in value.items():
            _target(target, f"policy {name!r}")
        return value

    @property
    def image_tag(self) -> str:
        return self.image or f"corral-env/{self.name}:{self.version}"

    def dump(self) -> str:
        """The manifest as ``corral.yaml`` text."""
        data = self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        data = {"spec_version": 1, **data}
        text: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        return text


def manifest_path(root: Path) -> Path | None:
    """The manifest file in ``root``: ``corral.yaml`` first, then ``openenv.yaml``."""
    for name in (MANIFEST, OPENENV_MANIFEST):
        if (root / name).is_file():
            return root / name
    return None


def read_manifest(path: Path) -> Manifest:
    """Parse a manifest file; every problem is a :class:`UsageError` naming the file and the fix."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path} must be a YAML mapping (key: value lines), not {type(data).__name__}")
    if path.name == OPENENV_MANIFEST:
        data = _from_openenv(data, path)
    try:
        return Manifest.model_validate({**data, "source": path.name})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise UsageError(f"{path}: {problems}") from exc


def _from_openenv(data: dict[str, Any], path: Path) -> dict[str, Any]:
    # OpenEnv's other keys (type, runtime) describe its own deployment and have no counterpart here.
    keys = ("name", "app", "port", "description", "version")
    mapped: dict[str, Any] = {key: data[key] for key in keys if key in data}
    if "name" in mapped and isinstance(mapped["name"], str):
        mapped["name"] = mapped["name"].lower().replace(" ", "-")
    if "version" in mapped:
        mapped["version"] = str(mapped["version"])
    if "app" not in mapped:
        raise UsageError(f"{path}: an openenv.yaml needs 'app: module:app' (the ASGI app to serve)")
    return mapped
