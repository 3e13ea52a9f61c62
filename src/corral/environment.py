"""The contract an environment author implements.

Subclass :class:`Environment` (blocking code) or :class:`AsyncEnvironment` (``async def``). The server
creates one instance per session, calls ``reset``/``step`` on it, reads ``state``, and calls ``close``
exactly once when the session ends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from .tools import ToolSpec, collect_tools
from .types import Action, EnvInfo, Observation, State, StepResult

ActT = TypeVar("ActT", bound=Action)
ObsT = TypeVar("ObsT", bound=Observation)
StateT = TypeVar("StateT", bound=State)


class _EnvironmentBase(ABC, Generic[ActT, ObsT, StateT]):
    """Class-level declarations shared by sync and async environments.

    Implementers must guarantee:

    - ``reset`` starts a new episode and returns its first observation (``reward`` is usually None);
    - with ``seedable = True``, the same seed and the same actions give the same episode, bit for bit;
      an environment that cannot promise that sets ``seedable = False`` and the server refuses seeds;
    - ``step`` is only called between a ``reset`` and the end of that episode (the server enforces it);
    - ``state`` is cheap and side-effect free;
    - ``close`` releases everything the instance holds and is safe to call more than once.
    """

    action_type: ClassVar[type[Action]]
    observation_type: ClassVar[type[Observation]]
    state_type: ClassVar[type[State]] = State
    info: ClassVar[EnvInfo] = EnvInfo(name="environment")

    #: Several sessions (instances) may run at once in one server. Opt out for singletons.
    concurrent_sessions: ClassVar[bool] = True
    #: The same seed reproduces the episode. Set False to have seeds refused instead of ignored.
    seedable: ClassVar[bool] = True
    #: Sync environments only: every call of one instance must run on one dedicated thread
    #: (libraries with thread affinity, such as Playwright's sync API).
    thread_affinity: ClassVar[bool] = False
    #: Sync environments only: calls are quick, never block, and may run on the event loop itself.
    inline: ClassVar[bool] = False
    #: ``reset`` restores the environment completely (nothing of one episode can reach the next), so a warm
    #: pool may hand a used server to another episode instead of destroying it.
    reset_restores: ClassVar[bool] = False

    _tools: ClassVar[dict[str, ToolSpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._tools = collect_tools(cls)

    @classmethod
    def tool_specs(cls) -> dict[str, ToolSpec]:
        """The tools this environment exposes over MCP, by name."""
        return cls._tools

    @property
    @abstractmethod
    def state(self) -> StateT:
        """The current episode's bookkeeping."""


class Environment(_EnvironmentBase[ActT, ObsT, StateT]):
    """A blocking environment. The server runs its calls off the event loop."""

    @abstractmethod
    def reset(
        self, seed: int | None = None, episode_id: str | None = None, **options: Any
    ) -> StepResult[ObsT]:
        """Start a new episode."""

    @abstractmethod
    def step(self, action: ActT) -> StepResult[ObsT]:
        """Apply one action and return what happened."""

    def close(self) -> None:
        """Release resources. Idempotent."""


class AsyncEnvironment(_EnvironmentBase[ActT, ObsT, StateT]):
    """An environment written with ``async def``; it runs on the server's event loop and must not block it."""

    @abstractmethod
    async def reset(
        self, seed: int | None = None, episode_id: str | None = None, **options: Any
    ) -> StepResult[ObsT]:
        """Start a new episode."""

    @abstractmethod
    async def step(self, action: ActT) -> StepResult[ObsT]:
        """Apply one action and return what happened."""

    async def close(self) -> None:
        """Release resources. Idempotent."""


AnyEnvironment = Environment[Any, Any, Any] | AsyncEnvironment[Any, Any, Any]
EnvClass = type[Environment[Any, Any, Any]] | type[AsyncEnvironment[Any, Any, Any]]
