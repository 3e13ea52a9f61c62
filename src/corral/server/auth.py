"""Optional bearer-token auth: with a token set, every route but ``/health`` requires it."""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping
from typing import Any


def authorized(scope: MutableMapping[str, Any], token: str | None) -> bool:
    if token is None:
        return True
    for key, value in scope["headers"]:
        if key == b"authorization":
            return bearer_matches(value, token)
    return False


def bearer_matches(value: str | bytes | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header value carries ``token`` (always true when no token is set)."""
    if token is None:
        return True
    if value is None:
        return False
    if isinstance(value, str):
        value = value.encode("latin-1", "replace")
    return secrets.compare_digest(value, f"Bearer {token}".encode())
