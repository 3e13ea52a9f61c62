import corral.testing


def test_public_surface() -> None:
    assert corral.testing.__all__ == [
        "AsyncInProcessClient",
        "AsyncInProcessSessionGroup",
        "CheckResult",
        "ConformanceError",
        "InProcessClient",
        "InProcessSessionGroup",
        "Outcome",
        "PackageReport",
        "Report",
        "ServerReport",
        "acheck_env",
        "check_env",
        "check_package",
        "check_server",
        "play_locally",
    ]
    # The in-process clients are the real clients over another transport: their groups are the real ones.
    real = {"AsyncInProcessSessionGroup": corral.AsyncSessionGroup, "InProcessSessionGroup": corral.SessionGroup}
    for name in corral.testing.__all__:
        member = getattr(corral.testing, name)
        assert member is real[name] if name in real else member.__module__.startswith("corral.testing."), name


def test_conformance_error_is_a_corral_error() -> None:
    error = corral.testing.ConformanceError("seed", "differs", "seed it")
    assert isinstance(error, corral.CorralError)
    assert (error.check, error.problem, error.fix, error.code) == ("seed", "differs", "seed it", "CONFORMANCE_ERROR")
    assert str(error) == "[seed] differs\n  fix: seed it"
