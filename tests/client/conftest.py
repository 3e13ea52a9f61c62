"""Fixtures for the client tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .scripted import ScriptedServer


@pytest.fixture
def scripted() -> Iterator[Any]:
    """Start a :class:`~tests.client.scripted.ScriptedServer`: ``scripted(subprotocols=[...], refuse=...)``;
    each is closed at teardown."""
    servers: list[ScriptedServer] = []

    def start(**options: Any) -> ScriptedServer:
        servers.append(ScriptedServer(**options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
