"""Optional bearer-token auth: with a token set, every route but ``/health`` requires it."""

from __future__ import annotations

import secrets
from collections.abc import MutableMapping
from typing import Any


def authorized(scope: MutableMapping[str, Any], token: str | None) -> bool:
    if token is None:
        return True
    expected = f"Bearer {token}".encode()
    for key, value in scope["headers"]:
        if key == b"authorization":
            return secrets.compare_digest(value, expected)
    return False
