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
        "ServerReport",
        "acheck_env",
        "check_env",
        "check_server",
    ]
    for name in corral.testing.__all__:
        assert getattr(corral.testing, name).__module__.startswith("corral.testing.")


def test_conformance_error_is_a_corral_error() -> None:
    error = corral.testing.ConformanceError("seed", "differs", "seed it")
    assert isinstance(error, corral.CorralError)
    assert (error.check, error.problem, error.fix, error.code) == ("seed", "differs", "seed it", "CONFORMANCE_ERROR")
    assert str(error) == "[seed] differs\n  fix: seed it"
