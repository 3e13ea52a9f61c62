"""``corral init``: the package it writes imports, resolves by folder, and passes its own tests as made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.cli.main import app
from corral.envs import resolve
from corral.errors import UsageError
from corral.package import load_package, scaffold
from corral.policy import load_policy
from corral.testing import check_env, play_locally


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("init") / "my-game"
    result = CliRunner().invoke(app, ["init", "my-game", "--dir", str(root), "--description", "A test game."])
    assert result.exit_code == 0, result.output
    return root


def test_writes_the_whole_layout(made: Path) -> None:
    files = {str(p.relative_to(made)) for p in made.rglob("*") if p.is_file()}
    assert files == {
        "corral.yaml", "pyproject.toml", "README.md", "Dockerfile", "tests/test_my_game.py",
        *(f"src/my_game/{m}.py" for m in ("__init__", "models", "environment", "client", "policies")),
    }
    assert "FROM ${BASE_IMAGE}" in (made / "Dockerfile").read_text()
    assert 'name = "my-game"' in (made / "pyproject.toml").read_text()


def test_the_package_loads_and_conforms(made: Path) -> None:
    package = load_package(made)
    assert package.manifest.description == "A test game."
    env_cls = resolve(str(made))
    assert env_cls is package.environment_class()
    check_env(env_cls)
    scripted = load_policy("scripted", env_cls, package)
    for seed in range(5):
        total, _ = play_locally(env_cls(), scripted, seed=seed)  # type: ignore[arg-type]
        assert total == package.manifest.max_reward


def test_the_typed_client_is_typed(made: Path) -> None:
    package = load_package(made)
    client_cls = package.import_target(package.manifest.client or "", "client")
    assert client_cls.observation_type.__name__ == "MyGameObservation"


def test_generated_tests_pass(made: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W",
                          "ignore::DeprecationWarning"], cwd=made, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 passed" in run.stdout


def test_refuses_to_overwrite(made: Path) -> None:
    with pytest.raises(UsageError, match="not empty"):
        scaffold("my-game", made)
    before = (made / "corral.yaml").read_text()
    assert scaffold("my-game", made, force=True) == []  # force writes only missing files
    assert (made / "corral.yaml").read_text() == before


@pytest.mark.parametrize(("name", "hint"), [("My Game", "lower case"), ("9lives", "lower case")])
def test_bad_names(tmp_path: Path, name: str, hint: str) -> None:
    result = CliRunner().invoke(app, ["init", name, "--dir", str(tmp_path / "x")])
    assert result.exit_code != 0
    with pytest.raises(UsageError, match=hint):
        scaffold(name, tmp_path / "y")


def test_bad_package_name(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--package"):
        scaffold("game", tmp_path / "z", package="class")


def test_metadata_serves_the_package_readme(made: Path) -> None:
    assert (resolve(str(made)).info.readme_content or "").startswith("# my-game")
