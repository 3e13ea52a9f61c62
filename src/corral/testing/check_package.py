"""``check_package``: everything ``corral validate`` proves about an environment package, as one report.

Static and local checks run in this process (the manifest, the environment class, ``check_env``, the named
policies, a reachable ``max_reward``, deterministic episodes); the live checks start the environment's
server in a runtime and run :func:`~corral.testing.check_server` against it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..environment import EnvClass
from ..envs import BUILTINS, installed, resolve, target
from ..errors import CorralError, UsageError
from ..package import EnvPackage, ValidateSettings, is_package, load_package
from ..policy import Policy, load_policy
from ..rollout import Client, Episode, play
from ..types import Action
from .check_env import _sample, check_env
from .conformance import ConformanceError, first_difference
from .inprocess import InProcessClient
from .report import CheckResult, Outcome, PackageReport

#: How far below ``max_reward`` a return may fall and still count as reaching it (float sums).
REWARD_TOLERANCE = 1e-6
#: Steps an episode may take when no manifest sets ``max_steps``.
DEFAULT_MAX_STEPS = 200


class _Skip(Exception):
    """A check that does not apply; its message says why."""


@dataclass
class _Subject:
    """What the checks share: the environment as named, and what was learnt about it so far."""

    spec: str
    package: EnvPackage | None = None
    env_cls: EnvClass | None = None
    settings: ValidateSettings = field(default_factory=ValidateSettings)
    max_reward: float | None = None
    max_steps: int = DEFAULT_MAX_STEPS
    sample_action: Action | dict[str, Any] | None = None
    scripted: Policy | None = None

    @property
    def env(self) -> EnvClass:
        assert self.env_cls is not None
        return self.env_cls

    def episode(self, client: Client, seed: int, policy: Policy) -> Episode:
        return play(client, policy, seed=seed, max_steps=self.max_steps, reset_options=self.settings.reset_options)


def check_package(env: str | os.PathLike[str], *, runtime: str | None = "subprocess",
                  timeout: float = 10.0) -> PackageReport:
    """Check the environment package at ``env`` (or any environment name ``corral.envs.resolve`` takes); never
    raises for a failed check.

    Checks, in order: ``manifest`` (the package's ``corral.yaml`` parses), ``environment`` (its class
    imports), ``info`` (the class's ``info.name`` is the manifest's ``name``), ``check_env`` (every check of
    :func:`~corral.testing.check_env`: types, schemas, reserved tool names, reset/step/state, seeded
    determinism, close), ``policies`` (every policy the manifest names loads), ``max_reward`` (the ``scripted``
    policy reaches the manifest's ``max_reward`` within ``max_steps`` on every ``validate.seeds`` seed),
    ``determinism`` (the same seed and the scripted policy give the same episode twice). The local episodes
    run through :class:`~corral.testing.InProcessClient`, so observations reach the policy as a client
    sees them. With a ``runtime`` (``subprocess``, ``sandbox``, ``inprocess``, ``docker``): ``server`` (it
    starts there) and every check of :func:`~corral.testing.check_server` against it.

    A failed ``manifest`` or ``environment`` check skips the rest. An OpenEnv package with only ``app:``
    has no environment class to check: serve it and check its URL instead.
    """
    spec = os.fspath(env)
    report = PackageReport(spec)
    subject = _Subject(spec)
    local: list[tuple[str, Callable[[_Subject], str]]] = [
        ("manifest", _manifest), ("environment", _environment), ("info", _info), ("check_env", _check_env),
        ("policies", _policies), ("max_reward", _max_reward), ("determinism", _determinism),
    ]
    for index, (name, check) in enumerate(local):
        result = _run(name, check, subject)
        report.checks.append(result)
        if name in ("manifest", "environment") and result.failed:
            why = f"not run: the {name} check failed"
            report.checks += [CheckResult(rest, Outcome.SKIPPED, why) for rest, _ in local[index + 1:]]
            return report
        if name == "environment" and result.outcome is Outcome.SKIPPED:
            return report
    if runtime is not None:
        _live(subject, runtime, timeout, report)
    return report


def _run(name: str, check: Callable[[_Subject], str], subject: _Subject) -> CheckResult:
    try:
        return CheckResult(name, Outcome.PASSED, check(subject))
    except _Skip as skip:
        return CheckResult(name, Outcome.SKIPPED, str(skip))
    except ConformanceError as exc:
        return CheckResult(name, Outcome.FAILED, f"[{exc.check}] {exc.problem}" + (f" (fix: {exc.fix})"
                                                                                   if exc.fix else ""))
    except CorralError as exc:
        return CheckResult(name, Outcome.FAILED, exc.message)
    except Exception as exc:
        return CheckResult(name, Outcome.FAILED, f"{type(exc).__name__}: {exc}")


def _is_package(spec: str) -> bool:
    if spec in BUILTINS or spec in installed():
        return False
    return os.sep in spec or spec.startswith(".") or is_package(spec) or os.path.exists(spec)


# -- static and local ----------------------------------------------------------------------------------


def _manifest(s: _Subject) -> str:
    if not _is_package(s.spec):
        raise _Skip(f"{s.spec!r} is not a package folder, so there is no manifest to check")
    package = s.package = load_package(s.spec)
    manifest = package.manifest
    s.settings, s.max_reward, s.max_steps = manifest.validate_, manifest.max_reward, manifest.max_steps
    s.sample_action = manifest.validate_.sample_action
    return f"{manifest.name} {manifest.version} from {package.manifest_file.name}"


def _environment(s: _Subject) -> str:
    if s.package is not None:
        if s.package.manifest.environment is None:
            raise _Skip(f"{s.package.manifest_file.name} names only an ASGI app ({s.package.manifest.app}), so "
                        "there is no environment class to check: serve it (corral serve PATH) and validate its URL")
        s.env_cls = s.package.environment_class()
        return s.package.manifest.environment
    s.env_cls = resolve(s.spec)
    return f"{s.env_cls.__module__}:{s.env_cls.__qualname__}"


def _info(s: _Subject) -> str:
    name = s.env.info.name
    if s.package is None:
        return f"{name} {s.env.info.version}"
    if name != s.package.manifest.name:
        raise UsageError(f"{s.env.__name__}.info.name is {name!r} but {s.package.manifest_file.name} names "
                         f"{s.package.manifest.name!r}; /metadata would disagree with the package: make them the "
                         "same")
    return f"{name} {s.env.info.version}; /metadata names the package"


def _check_env(s: _Subject) -> str:
    if s.sample_action is None:
        s.sample_action = _scripted_first_action(s)
    if s.sample_action is None:
        try:
            s.sample_action = _sample(s.env, None)
        except UsageError as exc:
            raise UsageError(f"{exc.message}; or set validate.sample_action in corral.yaml") from exc
    check_env(s.env, sample_action=s.sample_action, seed=s.settings.seeds[0],
              reset_options=s.settings.reset_options)
    return "types, schemas, tool names, reset/step/state, seeded determinism and close"


def _scripted_first_action(s: _Subject) -> Action | dict[str, Any] | None:
    """The scripted policy's first move, as the sample action the conformance checks send (None: no policy)."""
    try:
        policy = load_policy("scripted", s.env, s.package)
    except UsageError:
        return None
    try:
        with InProcessClient(s.env) as client:
            episode = play(client, policy, seed=s.settings.seeds[0], max_steps=1,
                           reset_options=s.settings.reset_options)
    except Exception:  # the checks that follow report what is wrong with the environment or the policy
        return None
    return episode.steps[1].action if len(episode.steps) > 1 else None


def _policies(s: _Subject) -> str:
    declared = s.package.manifest.policies if s.package is not None else {}
    names = list(declared) or ["scripted", "random"]
    found = []
    for name in names:
        try:
            policy = load_policy(name, s.env, s.package)
        except UsageError:
            if declared:
                raise
            continue
        found.append(name)
        if name == "scripted":
            s.scripted = policy
    if not found:
        raise _Skip("no policies: declare 'scripted' and 'random' under 'policies:' in corral.yaml")
    if s.scripted is None:
        with contextlib.suppress(UsageError):
            s.scripted = load_policy("scripted", s.env, s.package)
    return f"loaded {', '.join(found)}"


def _max_reward(s: _Subject) -> str:
    if s.max_reward is None:
        raise _Skip("the manifest sets no max_reward, so there is no reward to prove reachable")
    if s.scripted is None:
        raise UsageError(f"max_reward is {s.max_reward:g} but there is no 'scripted' policy to reach it: declare "
                         "one under 'policies:' in corral.yaml")
    missed = []
    with InProcessClient(s.env) as client:
        for seed in s.settings.seeds:
            episode = s.episode(client, seed, s.scripted)
            if episode.total_reward < s.max_reward - REWARD_TOLERANCE:
                how = (f"stopped at max_steps={s.max_steps}" if episode.cut else
                       "terminated" if episode.terminated else "truncated")
                missed.append(f"seed {seed}: {episode.total_reward:g} in {episode.step_count} steps ({how})")
    if missed:
        raise UsageError(f"the scripted policy does not reach max_reward {s.max_reward:g}: {'; '.join(missed)}; fix "
                         "the policy or the reward, or lower max_reward in corral.yaml")
    return f"the scripted policy reached {s.max_reward:g} on seeds {s.settings.seeds} within {s.max_steps} steps"


def _determinism(s: _Subject) -> str:
    if not s.env.seedable:
        raise _Skip("the environment refuses seeds (seedable = False)")
    if s.scripted is None:
        raise _Skip("no scripted policy to replay")
    with InProcessClient(s.env) as client:
        for seed in s.settings.seeds:
            first, second = (s.episode(client, seed, s.scripted).trajectory() for _ in range(2))
            diff = first_difference(first, second)
            if diff is not None:
                raise ConformanceError("seed", f"seed {seed} and the scripted policy gave two different episodes "
                                       f"(entry 0 is the reset, entry n step n): {diff}",
                                       "derive every random choice from the seed given to reset, or set "
                                       "seedable = False")
    return f"seeds {s.settings.seeds}: the scripted policy's episodes repeat exactly"


# -- live ----------------------------------------------------------------------------------------------


def _live(s: _Subject, runtime: str, timeout: float, report: PackageReport) -> None:
    from ..runtime import launch
    from .check_server import check_server

    if s.sample_action is None:
        report.checks.append(CheckResult("server", Outcome.SKIPPED, "not run: no sample action (set "
                                         "validate.sample_action in corral.yaml, or add a scripted policy)"))
        return
    started = time.perf_counter()
    try:
        server = launch(s.spec if s.package is None else target(str(s.package.root)), runtime)
    except CorralError as exc:
        report.checks.append(CheckResult("server", Outcome.FAILED, f"cannot start it in {runtime}: {exc.message}"))
        return
    with server:
        ready_ms = (time.perf_counter() - started) * 1000
        report.server = f"{server.runtime} at {server.url}"
        report.checks.append(CheckResult("server", Outcome.PASSED,
                                         f"{server.runtime} server ready in {ready_ms:.0f} ms at {server.url}"))
        served = check_server(server.url, sample_action=s.sample_action, token=server.token,
                              seed=s.settings.seeds[0], timeout=timeout, reset_options=s.settings.reset_options)
    report.checks += served.checks
