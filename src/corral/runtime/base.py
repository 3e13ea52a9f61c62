"""The runtime contract: start an environment server somewhere, prove it ready, stop it.

A :class:`Runtime` turns a :class:`ServerSpec` into a started :class:`Server`. ``start`` returns only once
the server has answered a real session round trip (connect, open, reset, close); on any failure it stops
what it started and raises :class:`~corral.errors.RuntimeFailed`. ``Server.stop`` is idempotent, and a
server is a context manager that stops on exit.
"""

from __future__ import annotations

import abc
import contextlib
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import CorralError, RuntimeFailed
from ..server.config import ServerConfig

if TYPE_CHECKING:
    from ..client import AsyncEnvClient, EnvClient


@dataclass(frozen=True)
class Limits:
    """Resource limits of one isolated server (None: the tier's default; 0: unlimited).

    ``cpu_s`` is CPU seconds over the server's whole life (RLIMIT_CPU); ``memory_mb`` caps the address space
    (RLIMIT_AS) and, where the machine allows, the memory cgroup; ``processes`` caps tasks (pids cgroup and
    RLIMIT_NPROC); ``open_files`` is RLIMIT_NOFILE; ``tmp_mb`` sizes the private writable /tmp.
    """

    cpu_s: int | None = 3600
    memory_mb: int | None = 1024
    processes: int | None = 64
    open_files: int | None = 4096
    tmp_mb: int | None = 64
    cpus: float | None = 1.0


@dataclass(frozen=True)
class ServerSpec:
    """What to run: an environment (a built-in name, ``module:Class``, or an image for Docker) and how.

    ``secrets`` reach the server through a file (or the container API), never a command line; the
    server's bearer token is one of them, made fresh per server unless ``token`` is given.
    """

    env: str
    config: ServerConfig = field(default_factory=ServerConfig)
    limits: Limits = field(default_factory=Limits)
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    token: str | None = None
    ready_timeout_s: float = 30.0

    def with_token(self) -> ServerSpec:
        """This spec with a bearer token set (a fresh random one when none was given)."""
        token = self.token or self.config.token or secrets.token_urlsafe(24)
        return replace(self, token=token, config=replace(self.config, token=token))


class Server(abc.ABC):
    """One started environment server. Stop it with :meth:`stop` or by leaving its ``with`` block."""

    runtime: ClassVar[str]

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self._stopped = False

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """Where clients connect: ``unix:///...sock`` or ``http://127.0.0.1:PORT``."""

    @property
    def token(self) -> str | None:
        return self.spec.token

    @abc.abstractmethod
    def alive(self) -> bool:
        """Whether the server is still running."""

    def exit_reason(self) -> str | None:
        """Why the server is gone (``"killed by signal 9"``...); None while it runs."""
        return None if self.alive() else "it is not running"

    @abc.abstractmethod
    def _stop(self) -> None:
        """Stop the server and remove everything it left behind; called at most once."""

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Stop the server and remove everything it left. Idempotent; never raises for a server already gone."""
        if self._stopped:
            return
        self._stopped = True
        self._stop()

    def client(self, **options: Any) -> EnvClient[Any, Any]:
        """A blocking client of this server (the client does not stop the server)."""
        from ..client import EnvClient

        options.setdefault("token", self.token)
        options.setdefault("resume", False)
        return EnvClient(self.url, **options)

    def async_client(self, **options: Any) -> AsyncEnvClient[Any, Any]:
        """An async client of this server (the client does not stop the server)."""
        from ..client import AsyncEnvClient

        options.setdefault("token", self.token)
        options.setdefault("resume", False)
        return AsyncEnvClient(self.url, **options)

    def wait_ready(self, timeout: float) -> None:
        """Wait until a real session round trip (connect, open, reset, close) succeeds; raise RuntimeFailed."""
        deadline = time.monotonic() + timeout
        self._ready_deadline = deadline
        delay = 0.001
        last: BaseException | None = None
        while True:
            if not self.alive():
                raise RuntimeFailed(f"the {self.runtime} server for {self.spec.env!r} exited before it was ready "
                                    f"({self.exit_reason()}){self._diagnostics()}")
            try:
                self._probe()
                return
            except (CorralError, TimeoutError, OSError) as exc:
                last = exc
                if isinstance(exc, CorralError) and exc.code in ("UNAUTHORIZED", "FACTORY_ERROR", "EXECUTION_ERROR"):
                    raise RuntimeFailed(f"the {self.runtime} server for {self.spec.env!r} is up but a session "
                                        f"fails: {exc}{self._diagnostics()}") from exc
            if time.monotonic() + delay > deadline:
                raise RuntimeFailed(f"the {self.runtime} server for {self.spec.env!r} was not ready within "
                                    f"{timeout:g} s (last error: {last}){self._diagnostics()}; raise "
                                    "ready_timeout_s if the environment is slow to start")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _probe(self) -> None:
        from ..client import EnvClient, Timeouts

        # Bounded by what is left of the readiness deadline, so a hung reset costs no more than the deadline.
        remaining = max(0.05, getattr(self, "_ready_deadline", time.monotonic() + 30.0) - time.monotonic())
        probe: EnvClient[Any, Any] = EnvClient(self.url, token=self.token, resume=False,
                                               timeouts=Timeouts(connect=min(5.0, remaining), request=remaining))
        with probe:
            probe.reset()

    def _diagnostics(self) -> str:
        """Extra context for an error (the tail of the server's log), prefixed with '; '."""
        return ""

    def __enter__(self) -> Server:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("running" if self.alive() else "exited")
        return f"<{type(self).__name__} {self.spec.env!r} {state} at {self.url}>"


class Runtime(abc.ABC):
    """Where servers run. ``start`` returns a ready :class:`Server`, or raises having left nothing behind."""

    name: ClassVar[str]

    @abc.abstractmethod
    def _launch(self, spec: ServerSpec) -> Server:
        """Start the server (not yet ready). On failure, clean up and raise."""

    def start(self, spec: ServerSpec | str, **spec_options: Any) -> Server:
        """Start a server for ``spec`` (or an environment name plus :class:`ServerSpec` fields) and wait until
        a session round trip works."""
        if isinstance(spec, str):
            spec = ServerSpec(spec, **spec_options)
        elif spec_options:
            spec = replace(spec, **spec_options)
        server = self._launch(spec.with_token())
        try:
            server.wait_ready(spec.ready_timeout_s)
        except BaseException:
            server.stop()
            raise
        return server

    @contextlib.contextmanager
    def serving(self, spec: ServerSpec | str, **spec_options: Any) -> Iterator[Server]:
        """``with runtime.serving("echo") as server:`` starts a server and stops it when the block ends."""
        server = self.start(spec, **spec_options)
        try:
            yield server
        finally:
            server.stop()
