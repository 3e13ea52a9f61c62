"""Public testing tools: in-process clients that need no sockets, and conformance checks.

``InProcessClient`` runs an environment's real server app inside the test process;
``check_env`` checks an environment class locally; ``check_server`` checks a running server;
``check_package`` runs both, and more, on an environment package (what ``corral validate`` does);
``play_locally`` plays one episode straight on an instance, for reproducibility and reward tests.
"""

from .check_env import acheck_env, check_env
from .check_package import check_package
from .check_server import check_server
from .conformance import ConformanceError
from .episode import play_locally
from .inprocess import AsyncInProcessClient, AsyncInProcessSessionGroup, InProcessClient, InProcessSessionGroup
from .report import CheckResult, Outcome, PackageReport, Report, ServerReport

__all__ = [
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
