"""``corral build PATH``: a package made by ``corral init`` becomes an image that serves both ways (OpenEnv's
container contract on port 8000, and the Docker runtime over a Unix socket), tagged from its manifest and
found in the cache when nothing changed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from corral.errors import UsageError
from corral.package import scaffold
from corral.runtime import launch
from corral.runtime.images import LABEL_ENV, LABEL_INPUTS, BuiltImage
from corral.runtime.package_image import LABEL_PACKAGE, build_package

from ..runtime.docker_support import docker_client

# The first build on a fresh machine makes the base image too (minutes); later ones come from the cache.
pytestmark = pytest.mark.timeout(900)

NAME = "buildcheck"
PACKAGE = "corral_buildcheck"


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli.main", *args], capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pkg") / NAME
    scaffold(NAME, root, package=PACKAGE)
    return root


@pytest.fixture(scope="module")
def built(package: Path) -> BuiltImage:
    docker_client()
    done = corral("build", str(package))
    assert done.returncode == 0, done.stderr
    assert f"corral-env/{NAME}:0.1.0" in done.stdout
    return build_package(package)


def test_the_image_is_tagged_from_the_manifest_and_labelled_for_the_runtime(built: BuiltImage) -> None:
    assert built.tag == f"corral-env/{NAME}:0.1.0"
    assert built.labels[LABEL_ENV] == f"{PACKAGE}.environment:BuildcheckEnvironment"
    assert built.labels[LABEL_PACKAGE] == NAME
    assert built.labels["org.opencontainers.image.version"] == "0.1.0"
    config = docker_client().images.get(built.tag).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["corral", "serve", NAME, "--host", "0.0.0.0", "--port", "8000"]


def test_an_unchanged_package_is_found_in_the_cache_and_a_changed_one_is_not(package: Path,
                                                                             built: BuiltImage) -> None:
    stages: list[str] = []
    again = build_package(package, progress=lambda stage, message: stages.append(stage))
    assert again.cached
    assert again.id == built.id
    assert stages == ["done"]
    quiet = corral("build", str(package), "--quiet", "--tag", "corral-test/buildcheck:custom")
    try:
        assert quiet.returncode == 0, quiet.stderr
        assert quiet.stdout.strip() == "corral-test/buildcheck:custom"
        assert docker_client().images.get("corral-test/buildcheck:custom").id == built.id
    finally:
        docker_client().images.remove("corral-test/buildcheck:custom")
    (package / "NOTES.txt").write_text("a new file in the build context\n")
    try:
        changed = build_package(package, tag="corral-test/buildcheck:changed")
        assert not changed.cached
        assert changed.labels[LABEL_INPUTS] != built.labels[LABEL_INPUTS]
    finally:
        (package / "NOTES.txt").unlink()
        docker_client().images.remove("corral-test/buildcheck:changed")


def test_docker_run_serves_openenv_s_container_contract_on_port_8000(built: BuiltImage) -> None:
    container = docker_client().containers.run(built.tag, detach=True, ports={"8000/tcp": ("127.0.0.1", None)})
    try:
        container.reload()
        port = int(container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"])
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert health.json() == {"status": "healthy"}
        assert httpx.get(f"http://127.0.0.1:{port}/metadata").json()["name"] == NAME
        reset = httpx.post(f"http://127.0.0.1:{port}/reset", json={"seed": 0}).json()
        assert reset["observation"]["counter"] == 0
        assert reset["done"] is False
    finally:
        container.remove(force=True)


def test_the_docker_runtime_serves_the_image_and_the_package_folder(package: Path, built: BuiltImage) -> None:
    for target in (built.tag, str(package)):
        with launch(target, runtime="docker") as server, server.client() as env:
            assert server.url.startswith("unix://")
            first = env.reset(seed=3)
            steps = 0
            while not first.done and steps < 40:
                first = env.step({"delta": 1 if first.observation.counter < first.observation.target else -1})
                steps += 1
            assert first.terminated
            assert first.reward == 1.0


def test_a_package_without_a_dockerfile_is_refused_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "nodocker"
    scaffold("nodocker", root, package="corral_nodocker")
    (root / "Dockerfile").unlink()
    with pytest.raises(UsageError, match="has no Dockerfile"):
        build_package(root)
    done = corral("build", str(root))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "has no Dockerfile" in done.stderr
    missing = corral("build", str(tmp_path / "absent"))
    assert missing.returncode != 0
    assert "does not exist" in missing.stderr


def test_every_command_has_help() -> None:
    for command in ("build", "push"):
        done = corral(command, "--help")
        assert done.returncode == 0
        assert "--" in done.stdout
