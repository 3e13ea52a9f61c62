"""Images built here without a registry: the mmdebstrap base, environment images FROM it, and the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral import __version__
from corral.runtime import images
from corral.runtime.images import BuiltImage, base_image, build_image

from .docker_support import HERE, HOSTILE, PACKAGE, docker_client, hostile_image

# The first test to need the test image builds it: minutes on a fresh machine (the base image included).
pytestmark = pytest.mark.timeout(900)

PROBE = """
import importlib.util, os, sys
print(os.getuid(), os.getgid(), sys.version_info[:2] == (3, 11), sys.prefix)
print(*(importlib.util.find_spec(m) is not None for m in ("corral", "corral_testpkg", "hostile_env", "pip")))
print(sum(len(files) for d in ("doc", "man", "info") for _, _, files in os.walk(f"/usr/share/{d}")))
"""


def test_the_base_image_is_debian_with_python_and_no_registry_behind_it() -> None:
    base = base_image(client=docker_client())
    assert base.tag == f"corral/base:{__version__}-py3.11"
    assert base.labels[images.LABEL_PYTHON] == "3.11"
    assert base.cached
    assert not docker_client().images.get(base.tag).attrs["RepoDigests"], "the base image came from a registry"


def test_an_environment_image_runs_unprivileged_with_its_packages_and_no_pip() -> None:
    built = hostile_image()
    assert built.labels[images.LABEL_ENV] == HOSTILE
    config = docker_client().images.get(built.tag).attrs["Config"]
    assert config["User"] == f"{images.USER_ID}:{images.USER_ID}"
    assert config["Cmd"] == list(images.COMMAND)
    output = docker_client().containers.run(built.tag, ["python", "-c", PROBE], remove=True, network_mode="none")
    uid_line, modules, docs = output.decode().splitlines()
    assert uid_line.split() == ["10001", "10001", "True", images.VENV]
    assert modules.split() == ["True", "True", "True", "False"]
    assert docs == "0", "documentation was installed"


def test_a_rebuild_with_nothing_changed_is_found_in_the_cache() -> None:
    stages: list[str] = []

    def build() -> BuiltImage:
        stages.clear()
        return build_image(HOSTILE, packages=[PACKAGE], files={"hostile_env.py": HERE / "hostile_env.py"},
                           client=docker_client(), progress=lambda stage, message: stages.append(stage))

    first = build()  # the session's image, unless the sources changed since
    again = build()
    assert again.cached
    assert again.id == first.id
    assert stages == ["done"]


def test_the_cache_key_follows_the_sources(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "x.py").write_text("A = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    first = images._tree_digest(tmp_path)
    (tmp_path / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\1")
    assert images._tree_digest(tmp_path) == first
    (tmp_path / "x.py").write_text("A = 2\n")
    assert images._tree_digest(tmp_path) != first
