"""The peer's echo server (peer/echo_server.py) as openenv-core's own images serve an environment: uvicorn on
0.0.0.0:8000 inside the container, reached through a published port. The command of the peer's image in
benchmarks/runtimes_docker.py; not run on the host."""

from __future__ import annotations

import uvicorn
from echo_server import EchoAction, EchoEnvironment, EchoObservation
from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.types import ConcurrencyConfig

app = create_app(EchoEnvironment, EchoAction, EchoObservation, env_name="echo_env",
                 concurrency_config=ConcurrencyConfig(max_concurrent_envs=64, session_timeout=None))

if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=8000, log_level="warning")
