"""Pushing an image to an OCI registry (``corral push PATH --to HOST[:PORT][/NAMESPACE]``).

The image is tagged ``REGISTRY/NAME:VERSION`` and pushed by the Docker daemon, whose layer-by-layer
status goes to a ``progress(layer, status, current, total)`` callback. Docker reaches a registry on
127.0.0.0/8 over plain HTTP without configuration; any other registry needs TLS, or the daemon's
``insecure-registries`` setting. Whatever the registry refuses (unreachable, unauthorized, bad name)
surfaces as one :class:`~corral.errors.TransportError` naming the registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import RuntimeFailed, TransportError, UsageError

#: ``progress(layer, status, current_bytes, total_bytes)``; the byte counts are 0 when unknown.
PushProgress = Callable[[str, str, int, int], None]

_REGISTRY = re.compile(r"^(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::(?P<port>\d{1,5}))?"
                       r"(?P<namespace>(/[a-z0-9._-]+)*)$")


@dataclass(frozen=True)
class PushedImage:
    """Where an image went: its reference in the registry (``127.0.0.1:5000/echo:0.1.0``) and the manifest
    digest the registry answered with."""

    reference: str
    repository: str
    tag: str
    digest: str | None


def registry_repository(registry: str, name: str) -> str:
    """``REGISTRY/NAME`` for a registry given as ``HOST[:PORT][/NAMESPACE]``; UsageError for anything else."""
    registry = registry.rstrip("/")
    if "://" in registry:
        raise UsageError(f"--to {registry!r}: give the registry as HOST[:PORT][/NAMESPACE], without a scheme "
                         "(for example 127.0.0.1:5000)")
    match = _REGISTRY.match(registry)
    if match is None or ("." not in match["host"] and ":" not in registry and match["host"] != "localhost"):
        raise UsageError(f"--to {registry!r} is not a registry: give HOST[:PORT][/NAMESPACE], for example "
                         "127.0.0.1:5000 or registry.example:443/team")
    return f"{registry}/{name}"


def push_image(image: str, registry: str, *, name: str, version: str, client: Any = None,
               progress: PushProgress | None = None) -> PushedImage:
    """Tag the local ``image`` as ``REGISTRY/NAME:VERSION`` and push it."""
    from docker.errors import DockerException, ImageNotFound  # type: ignore[import-untyped]

    from .docker import connect

    client = client or connect()
    repository = registry_repository(registry, name)
    reference = f"{repository}:{version}"
    try:
        client.images.get(image).tag(repository, version)
    except ImageNotFound as exc:
        raise RuntimeFailed(f"image {image!r} is not in the local Docker daemon: build it first") from exc
    except DockerException as exc:
        raise RuntimeFailed(f"Docker could not tag {image!r} as {reference}: {exc}") from exc
    digest = None
    try:
        for chunk in client.api.push(repository, tag=version, stream=True, decode=True):
            if "error" in chunk or "errorDetail" in chunk:
                detail = chunk.get("errorDetail") or {}
                message = str(chunk.get("error") or detail.get("message") or chunk).strip()
                raise TransportError(f"pushing {reference} failed: {message}")
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
            if progress is not None and chunk.get("status"):
                detail = chunk.get("progressDetail") or {}
                progress(str(chunk.get("id", "")), str(chunk["status"]), int(detail.get("current") or 0),
                         int(detail.get("total") or 0))
    except TransportError:
        raise
    except Exception as exc:  # the daemon itself failed (requests' errors are not DockerException)
        raise TransportError(f"pushing {reference} failed: {exc}") from exc
    return PushedImage(reference=reference, repository=repository, tag=version, digest=digest)
