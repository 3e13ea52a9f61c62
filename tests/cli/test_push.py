"""``corral push``: to a real OCI registry (Debian's docker-registry on 127.0.0.1, started by
scripts/registry-up), checked through the registry's own API and by pulling the image back; and to a
Hugging Face Space, against a local server that records what ``huggingface_hub`` sends (no hub is
reachable from the test machines)."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from corral.errors import UsageError
from corral.package import scaffold
from corral.package.space import SpaceTarget
from corral.runtime.registry import registry_repository

from ..runtime.docker_support import docker_client
from .hub import HubServer

pytestmark = pytest.mark.timeout(900)

NAME = "pushcheck"
PACKAGE = "corral_pushcheck"
MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
])


def corral(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli.main", *args], capture_output=True, text=True,
                          timeout=600, check=False, env=env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pkg") / NAME
    scaffold(NAME, root, package=PACKAGE, description="Counts to a target; pushed by the tests.")
    return root


def test_push_to_a_registry_then_pull_it_back(package: Path, registry: str) -> None:
    client = docker_client()
    namespace = f"t{uuid.uuid4().hex[:10]}"  # a fresh repository in the long-lived registry
    done = corral("push", str(package), "--to", f"{registry}/{namespace}")
    assert done.returncode == 0, done.stderr
    reference = f"{registry}/{namespace}/{NAME}:0.1.0"
    assert reference in done.stdout

    base = f"http://{registry}/v2"
    assert f"{namespace}/{NAME}" in httpx.get(f"{base}/_catalog?n=1000").json()["repositories"]
    assert httpx.get(f"{base}/{namespace}/{NAME}/tags/list").json()["tags"] == ["0.1.0"]
    head = httpx.head(f"{base}/{namespace}/{NAME}/manifests/0.1.0", headers={"Accept": MANIFEST_TYPES})
    assert head.status_code == 200
    digest = head.headers["Docker-Content-Digest"]
    assert digest in done.stdout

    local = client.images.get(f"corral-env/{NAME}:0.1.0")
    client.images.remove(reference)
    pulled = client.images.pull(f"{registry}/{namespace}/{NAME}", tag="0.1.0")
    try:
        assert pulled.id == local.id
        assert f"{registry}/{namespace}/{NAME}@{digest}" in pulled.attrs["RepoDigests"]
    finally:
        client.images.remove(reference)


def test_registry_errors_are_one_line(package: Path) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    done = corral("push", str(package), "--to", nobody, "--quiet")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("error: pushing ")
    assert "connection refused" in done.stderr
    with pytest.raises(UsageError, match="without a scheme"):
        registry_repository("http://127.0.0.1:5000", NAME)
    with pytest.raises(UsageError, match="is not a registry"):
        registry_repository("alice", NAME)
    assert registry_repository("[::1]:5000/team/", NAME) == f"[::1]:5000/team/{NAME}"
    bad = corral("push", str(package), "--to", "https://127.0.0.1:5000")
    assert bad.returncode == 1
    assert "without a scheme" in bad.stderr


@pytest.fixture
def hub() -> Iterator[HubServer]:
    server = HubServer()
    with server:
        yield server


def test_push_to_a_space_creates_it_and_uploads_a_self_contained_docker_space(package: Path, hub: HubServer,
                                                                             ) -> None:
    done = corral("push", str(package), "--to", "hf-space:alice/pushcheck", "--endpoint", hub.hub.url,
                  "--token", "hf_test_token", "--private")
    assert done.returncode == 0, done.stderr
    assert "alice/pushcheck" in done.stdout
    recorded = hub.hub
    assert recorded.paths()[0] == "POST /api/repos/create"
    assert recorded.created == [{"name": "pushcheck", "organization": "alice", "visibility": "private",
                                 "type": "space", "sdk": "docker"}]
    assert all(r.headers.get("authorization") == "Bearer hf_test_token" for r in recorded.requests)
    assert recorded.commits[0]["summary"] == "corral push pushcheck 0.1.0"

    files = recorded.files["alice/pushcheck"]
    assert {"README.md", "Dockerfile", "corral.yaml", "pyproject.toml", "wheels/constraints.txt",
            f"src/{PACKAGE}/environment.py"} <= set(files)
    wheels = sorted(path for path in files if path.endswith(".whl"))
    assert [w.split("/")[1].split("-")[0] for w in wheels] == ["corral", PACKAGE]
    assert not any(part in path for path in files for part in ("__pycache__", ".egg-info", ".venv"))

    readme = files["README.md"].decode()
    _, matter, body = readme.split("---\n", 2)
    meta = yaml.safe_load(matter)
    assert meta["sdk"] == "docker"
    assert meta["app_port"] == 8000
    assert meta["title"] == NAME
    assert meta["short_description"] == "Counts to a target; pushed by the tests."
    assert body.lstrip().startswith(f"# {NAME}")

    dockerfile = files["Dockerfile"].decode()
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim" in dockerfile
    assert "corral/base" not in dockerfile  # a Space has no local base image
    assert "USER user" in dockerfile
    assert f'CMD ["corral", "serve", "{NAME}", "--host", "0.0.0.0", "--port", "8000"]' in dockerfile
    pins = files["wheels/constraints.txt"].decode().split()
    assert any(pin.startswith("pydantic==") for pin in pins)


def test_a_space_dry_run_writes_the_folder_and_uploads_nothing(package: Path, tmp_path: Path,
                                                               hub: HubServer) -> None:
    folder = tmp_path / "space"
    done = corral("push", str(package), "--to", "hf-space:alice/pushcheck", "--endpoint", hub.hub.url,
                  "--dry-run", "--space-dir", str(folder))
    assert done.returncode == 0, done.stderr
    assert str(folder) in done.stdout.replace("\n", "")
    assert hub.hub.requests == []
    assert (folder / "README.md").read_text().startswith("---\ntitle: pushcheck\n")
    assert (folder / "Dockerfile").is_file()
    assert sorted(p.name.split("-")[0] for p in (folder / "wheels").glob("*.whl")) == ["corral", PACKAGE]
    again = corral("push", str(package), "--to", "hf-space:alice/pushcheck", "--dry-run", "--space-dir",
                   str(folder))
    assert again.returncode == 0, again.stderr  # its own earlier Space is replaced


def test_hub_refusals_and_bad_space_names_are_one_line(package: Path) -> None:
    with HubServer(refuse_with=401) as refusing:
        done = corral("push", str(package), "--to", "hf-space:alice/pushcheck", "--endpoint", refusing.url,
                      "--token", "wrong")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "refused the Space alice/pushcheck" in done.stderr
    assert "wrong" not in done.stderr
    with pytest.raises(UsageError, match="is not a Space"):
        SpaceTarget.parse("hf-space:no-owner")
    unreachable = corral("push", str(package), "--to", "hf-space:alice/pushcheck", "--endpoint",
                         f"http://127.0.0.1:{free_port()}", "--token", "t")
    assert unreachable.returncode == 1
    assert "cannot reach the hub" in unreachable.stderr
