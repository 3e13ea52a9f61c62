"""The manifest: corral.yaml is strict and says what is wrong; OpenEnv's openenv.yaml is read too."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import UsageError
from corral.package import Manifest, load_package, read_manifest


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_a_full_manifest_round_trips(tmp_path: Path) -> None:
    manifest = Manifest(name="maze", environment="maze.env:MazeEnvironment", policies={"scripted": "maze.p:go"},
                        max_reward=1.0, validate={"seeds": [4, 5]})  # type: ignore[call-arg]
    path = write(tmp_path, "corral.yaml", manifest.dump())
    again = read_manifest(path)
    assert again == manifest
    assert again.validate_.seeds == [4, 5]
    assert again.image_tag == "corral-env/maze:0.1.0"
    assert "source" not in path.read_text()


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("name: maze\nenviroment: maze.env:Maze\n", "enviroment: Extra inputs are not permitted"),
        ("name: Maze\n", "name: Value error, name must be lower case"),
        ("name: maze\nenvironment: maze.env\n", "must look like 'package.module:Name'"),
        ("name: maze\npolicies: {scripted: nope}\n", "policy 'scripted' must look like"),
        ("name: maze\nport: 70000\n", "port: Input should be less than or equal to 65535"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("name: [unclosed\n", "is not valid YAML"),
        ("name: maze\nspec_version: 2\n", "spec_version"),
    ],
)
def test_bad_manifests_say_what_to_fix(tmp_path: Path, text: str, hint: str) -> None:
    path = write(tmp_path, "corral.yaml", text)
    with pytest.raises(UsageError, match=r"corral\.yaml") as info:
        read_manifest(path)
    assert hint in str(info.value)


def test_openenv_manifest_is_read(tmp_path: Path) -> None:
    write(tmp_path, "openenv.yaml", "spec_version: 1\nname: Echo Env\ntype: space\nruntime: fastapi\n"
                                    "app: server.app:app\nport: 8000\n")
    package = load_package(tmp_path)
    assert package.manifest.name == "echo-env"
    assert package.manifest.app == "server.app:app"
    assert package.manifest.source == "openenv.yaml"
    with pytest.raises(UsageError, match="names no 'environment'"):
        package.environment_class()


def test_openenv_manifest_needs_an_app(tmp_path: Path) -> None:
    write(tmp_path, "openenv.yaml", "spec_version: 1\nname: echo\n")
    with pytest.raises(UsageError, match="needs 'app: module:app'"):
        load_package(tmp_path)


def test_corral_yaml_wins_over_openenv_yaml(tmp_path: Path) -> None:
    write(tmp_path, "openenv.yaml", "name: other\napp: server.app:app\n")
    write(tmp_path, "corral.yaml", "name: mine\n")
    assert load_package(tmp_path).manifest.name == "mine"


def test_missing_package_folder_and_manifest(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_package(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="corral init NAME"):
        load_package(tmp_path)
