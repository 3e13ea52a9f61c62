"""check_package: every row of corral validate, on packages made by corral init and broken on purpose."""

from __future__ import annotations

from pathlib import Path

from corral.testing import Outcome, check_package
from tests.cli.support import edit, make_package

LOCAL = ["manifest", "environment", "info", "check_env", "policies", "max_reward", "determinism"]


def outcomes(report: object) -> dict[str, str]:
    return {check.name: check.outcome.value for check in report.checks}  # type: ignore[attr-defined]


def test_a_new_package_passes_every_check_and_the_live_run(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    report = check_package(root, runtime="inprocess")
    assert report.ok, str(report)
    names = [check.name for check in report.checks]
    assert names[:len(LOCAL)] == LOCAL
    assert {"server", "health", "seed", "isolation", "error:VALIDATION_ERROR", "resume"} <= set(names)
    assert all(check.outcome is Outcome.PASSED for check in report.checks), str(report)
    assert report.server is not None
    assert report.server.startswith("inprocess")


def test_local_checks_only_without_a_runtime(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    report = check_package(root, runtime=None)
    assert [check.name for check in report.checks] == LOCAL
    assert report.ok


def test_a_bad_manifest_fails_its_row_and_skips_the_rest(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    edit(root / "corral.yaml", "max_steps: 40", "max_step: 40")
    report = check_package(root, runtime=None)
    assert not report.ok
    assert report["manifest"].failed
    assert "max_step" in report["manifest"].message
    assert all(outcomes(report)[name] == "skip" for name in LOCAL[1:])
    assert "not run: the manifest check failed" in report["environment"].message


def test_a_reserved_tool_name_fails_with_the_reason(tmp_path: Path) -> None:
    root, package = make_package(tmp_path)
    environment = root / "src" / package / "environment.py"
    edit(environment, "from corral import EnvInfo, Environment, StepResult",
         "from corral import EnvInfo, Environment, StepResult, tool")
    edit(environment, "    @property\n    def state(self)",
         "    @tool(name=\"reset\")\n    def restart(self) -> str:\n        return \"again\"\n\n"
         "    @property\n    def state(self)")
    report = check_package(root, runtime=None)
    assert report["environment"].failed
    assert "reserved for episode control" in report["environment"].message


def test_a_nondeterministic_environment_fails_determinism(tmp_path: Path) -> None:
    root, package = make_package(tmp_path)
    edit(root / "src" / package / "environment.py", "random.Random(seed).randint(1, 10)",
         "random.randint(1, 10_000)")
    report = check_package(root, runtime=None)
    assert report["check_env"].failed
    assert "[seed]" in report["check_env"].message
    assert report["determinism"].failed
    assert "different episodes" in report["determinism"].message


def test_an_unreachable_max_reward_fails_with_each_seed(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    edit(root / "corral.yaml", "max_reward: 1.0", "max_reward: 2.0")
    report = check_package(root, runtime=None)
    assert outcomes(report)["max_reward"] == "fail"
    message = report["max_reward"].message
    assert "does not reach max_reward 2" in message
    assert "seed 0: 1 in" in message
    assert "seed 2:" in message


def test_a_policy_that_cannot_reach_it_in_max_steps(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    edit(root / "corral.yaml", "max_steps: 40", "max_steps: 1")
    report = check_package(root, runtime=None)
    assert report["max_reward"].failed
    assert "stopped at max_steps=1" in report["max_reward"].message


def test_a_policy_named_in_the_manifest_must_load(tmp_path: Path) -> None:
    root, package = make_package(tmp_path)
    edit(root / "corral.yaml", f"random: {package}.policies:random", f"random: {package}.policies:missing")
    report = check_package(root, runtime=None)
    assert report["policies"].failed
    assert "missing" in report["policies"].message


def test_info_must_name_the_package(tmp_path: Path) -> None:
    root, _ = make_package(tmp_path)
    edit(root / "corral.yaml", "name: demo", "name: other")
    report = check_package(root, runtime=None)
    assert report["info"].failed
    assert "'demo'" in report["info"].message
    assert "'other'" in report["info"].message


def test_a_builtin_environment_is_checked_without_a_manifest() -> None:
    report = check_package("guess", runtime=None)
    assert report.ok, str(report)
    assert report["manifest"].outcome is Outcome.SKIPPED
    assert report["max_reward"].outcome is Outcome.SKIPPED  # no manifest, so no max_reward to prove


def test_an_unknown_environment_fails_its_row() -> None:
    report = check_package("no-such-env", runtime=None)
    assert report["environment"].failed
    assert "unknown environment 'no-such-env'" in report["environment"].message


def test_an_openenv_app_package_has_no_class_to_check(tmp_path: Path) -> None:
    (tmp_path / "openenv.yaml").write_text("spec_version: 1\nname: peer\napp: server.app:app\nport: 8000\n")
    report = check_package(tmp_path, runtime="inprocess")
    assert report["environment"].outcome is Outcome.SKIPPED
    assert "validate its URL" in report["environment"].message
    assert [check.name for check in report.checks] == ["manifest", "environment"]
