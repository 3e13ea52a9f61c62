"""gridworld: Walk a seeded grid to the goal around walls and traps."""

from .client import AsyncGridworldClient, GridworldClient
from .environment import GridworldEnvironment
from .layout import Layout, generate, shortest_path
from .models import GridworldAction, GridworldObservation, GridworldState, Move

__all__ = [
    "AsyncGridworldClient",
    "GridworldAction",
    "GridworldClient",
    "GridworldEnvironment",
    "GridworldObservation",
    "GridworldState",
    "Layout",
    "Move",
    "generate",
    "shortest_path",
]
