"""docs/writing-an-environment.md's walk from ``corral init`` to ``corral push``, run as a newcomer would:
every line of its first bash block, in order, in a fresh folder, with the real registry and a recording
stand-in for the Hugging Face Hub (none is reachable here). ``corral serve`` never returns by itself, so
its line is started in the background, asked for ``/health`` and stopped."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .hub import HubServer

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing-an-environment.md"


def walkthrough() -> list[str]:
    text = DOC.read_text()
    section = text[text.index("## From `corral init` to `corral push`"):]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the walkthrough section lost its bash block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_briefly(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    port = free_port()
    server = subprocess.Popen([*argv, "--port", str(port)], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, f"{shlex.join(argv)} exited: {server.stderr.read().decode()[-800:]}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, f"{shlex.join(argv)} never answered /health"
            time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{port}/metadata", timeout=5).json()["name"] == "my-game"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        server.stderr.close()  # type: ignore[union-attr]


def test_from_init_to_push(tmp_path: Path, registry: str) -> None:
    lines = walkthrough()
    assert lines[0].startswith("corral init")
    assert any(line.startswith("corral push") for line in lines)
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    cwd = tmp_path
    with HubServer() as hub:
        env["HF_ENDPOINT"], env["HF_TOKEN"] = hub.url, "hf_walkthrough"
        for line in lines:
            argv = shlex.split(line)
            if argv[0] == "cd":
                cwd = cwd / argv[1]
                continue
            if argv[0] == "pytest":
                argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
            argv = [registry if a == "127.0.0.1:5000" else a for a in argv]
            if argv[:2] == ["corral", "serve"]:
                serve_briefly(argv, cwd, env)
                continue
            done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
            assert done.returncode == 0, f"`{line}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert "me/my-game" in hub.files
    assert (cwd / "episodes.jsonl").read_text().count("\n") > 20
