"""corral serve: package folders, OpenEnv app-only packages, and --reload, each in a real server process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from corral.cli.serve import RELOAD_CONFIG, RELOAD_ENV, reload_app
from corral.server import CorralApp
from tests.cli.support import corral, edit, free_port, make_package

CORRAL = [sys.executable, "-m", "corral.cli.main"]


@contextlib.contextmanager
def serving(*args: str, cwd: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``corral serve ARGS --port P`` in a child process, stopped (by its pid) when the block ends."""
    port = free_port()
    with (cwd / "serve.log").open("w") as log:
        process = subprocess.Popen([*CORRAL, "serve", *args, "--port", str(port), "--log-level", "warning"],
                                   cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the server and, with --reload, its worker
            process.wait()


def wait_for(url: str, process: subprocess.Popen[str], until: Callable[[httpx.Response], bool],
             timeout: float = 30.0) -> httpx.Response:
    """Poll ``url`` until ``until(response)``; fail with the server's output if it exits or never gets there."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited ({process.returncode}); its output is in serve.log")
        try:
            response = httpx.get(url, timeout=2.0)
            if until(response):
                return response
            last = response.text
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.05)
    pytest.fail(f"{url} never answered as expected within {timeout} s; last: {last!r}")


def test_serve_a_package_folder(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    with serving(str(root), cwd=tmp_path) as (url, process):
        metadata = wait_for(f"{url}/metadata", process, lambda r: r.status_code == 200).json()
        assert metadata["name"] == "demo"
        reset = httpx.post(f"{url}/reset", json={"seed": 1}, timeout=5.0).json()
        assert reset["observation"]["counter"] == 0


def test_serve_an_openenv_app_package(tmp_path: Path) -> None:
    (tmp_path / "openenv.yaml").write_text("spec_version: 1\nname: Peer App\ntype: space\nruntime: fastapi\n"
                                           "app: peer_app:app\nport: 8000\n")
    (tmp_path / "peer_app.py").write_text(
        "from starlette.applications import Starlette\n"
        "from starlette.responses import JSONResponse\n"
        "from starlette.routing import Route\n\n"
        "async def metadata(request):\n"
        "    return JSONResponse({'name': 'peer-app', 'served': 'as is'})\n\n"
        "app = Starlette(routes=[Route('/metadata', metadata)])\n"
    )
    with serving(str(tmp_path / "openenv.yaml"), cwd=tmp_path) as (url, process):
        metadata = wait_for(f"{url}/metadata", process, lambda r: r.status_code == 200).json()
        assert metadata == {"name": "peer-app", "served": "as is"}


def test_reload_picks_up_a_change(tmp_path: Path) -> None:
    root, package = make_package(tmp_path)
    with serving(str(root), "--reload", cwd=tmp_path) as (url, process):
        before = wait_for(f"{url}/metadata", process, lambda r: r.status_code == 200).json()
        assert before["description"] == "The demo environment."
        edit(root / "src" / package / "environment.py", 'description="The demo environment."',
             'description="Changed while serving."')
        wait_for(f"{url}/metadata", process,
                 lambda r: r.status_code == 200 and r.json()["description"] == "Changed while serving.")


def test_the_reload_factory_builds_the_app_from_its_environment(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = make_package(tmp_path)
    monkeypatch.setenv(RELOAD_ENV, str(root))
    monkeypatch.setenv(RELOAD_CONFIG, '{"capacity": 7, "lease_s": 5.0}')
    app = reload_app()
    assert isinstance(app, CorralApp)
    assert app.env_cls.info.name == "demo"
    assert (app.config.capacity, app.config.lease_s) == (7, 5.0)


def test_serve_failures_are_one_line(tmp_path: Path) -> None:
    code, _, err = corral("serve", str(tmp_path / "absent") + "/")
    assert code == 1
    assert "does not exist" in err
    assert err.count("\n") == 1
    (tmp_path / "openenv.yaml").write_text("name: peer\napp: peer_app:app\n")
    code, _, err = corral("serve", str(tmp_path), "--token", "s3cret")
    assert code == 1
    assert "--token cannot protect it" in err
    code, _, err = corral("serve", "echo", "--reload", "--workers", "2")
    assert code == 1
    assert "--reload restarts one server process" in err
