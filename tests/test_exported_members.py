import corral

EXPECTED = {
    "Action", "AsyncEnvClient", "AsyncEnvironment", "AsyncSessionGroup", "CapacityReached", "ClientClosed",
    "ConnectionLost", "CorralError", "DeadlineExceeded", "EnvClient", "EnvInfo", "Environment", "EnvironmentFailed",
    "FactoryError", "InvalidAction", "InvalidFrame", "Observation", "ProtocolError", "ResetNeeded",
    "SeedNotSupported", "ServerConfig", "SessionError", "SessionGroup", "State", "StepResult", "Timeouts",
    "TransportError", "Unauthorized", "UsageError", "__version__", "create_app", "serve", "tool",
}


def test_public_surface_is_deliberate() -> None:
    assert set(corral.__all__) == EXPECTED, "the public API changed: update EXPECTED if that was intended"
    assert corral.__all__ == sorted(corral.__all__)


def test_every_export_exists() -> None:
    for name in corral.__all__:
        assert hasattr(corral, name), name


def test_errors_share_one_root() -> None:
    for name in corral.__all__:
        member = getattr(corral, name)
        if isinstance(member, type) and issubclass(member, Exception):
            assert issubclass(member, corral.CorralError), name
