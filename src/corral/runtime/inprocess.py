"""Servers inside this process: a uvicorn server on its own thread and event loop, on a Unix socket.

The fastest tier and the least isolated: the environment shares this interpreter. For tests and trusted
local work; a server stops with its owner because it is part of it.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import ClassVar

import uvicorn

from ..envs import resolve
from ..errors import RuntimeFailed
from ..server import create_app
from ..server.serve import uvicorn_config
from .base import Runtime, Server, ServerSpec
from .process import SOCKET, runtime_dir


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the owner's signals stay the owner's
        pass


class InProcessServer(Server):
    runtime = "inprocess"

    def __init__(self, spec: ServerSpec) -> None:
        super().__init__(spec)
        self.folder = Path(tempfile.mkdtemp(prefix="corral-", dir=runtime_dir()))
        self.socket_path = str(self.folder / SOCKET)
        app = create_app(resolve(spec.env), spec.config)
        self.server = _ThreadServer(uvicorn_config(app, uds=self.socket_path, config=spec.config))
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"corral-inprocess-{spec.env}", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # reported through exit_reason
            self.failure = exc

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def alive(self) -> bool:
        return self.thread.is_alive()

    def exit_reason(self) -> str | None:
        if self.alive():
            return None
        return f"it failed: {self.failure!r}" if self.failure else "it stopped"

    def _stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(10)
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.thread.is_alive():
            raise RuntimeFailed(f"the in-process server for {self.spec.env!r} did not stop within 10 s")


class InProcessRuntime(Runtime):
    """Each server runs on a thread of this process (no isolation; no start-up cost beyond the app)."""

    name: ClassVar[str] = "inprocess"

    def _launch(self, spec: ServerSpec) -> Server:
        server = InProcessServer(spec)
        server.thread.start()
        deadline = time.monotonic() + spec.ready_timeout_s
        while not server.server.started and server.alive() and time.monotonic() < deadline:
            time.sleep(0.001)
        return server
