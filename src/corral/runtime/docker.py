"""The Docker tier: each server in its own container of a real Docker daemon (the ``docker`` extra).

``ServerSpec.env`` names an image, optionally followed by ``#`` and the environment to serve:
``corral/echo:3f2a…`` serves the environment the image was built for (its ``dev.corral.env`` label, set by
:func:`corral.runtime.images.build_image`), ``corral/tools:1#guess`` or ``img#pkg.module:Class`` serves
that one (a built-in name or ``module:Class`` installed in the image). ``#`` cannot occur in an image
reference, so the split is unambiguous. A bare built-in name (``"echo"``) with no image of that name is
built on first use; the folder of an environment package (``./envs/chess``) is built into its image
(:func:`corral.runtime.package_image.build_package`, found in the cache when nothing changed) and served.
Images are never pulled: build them locally. Containers always run ``corral.runtime.child`` on the spec
file, whatever the image's own ``CMD``.

What a container gets by default: no network at all (``--network none``; the server listens on a Unix
socket in a host folder mounted at /run/corral), or, with ``network="bridge"`` for images that need one,
its port published on 127.0.0.1 only; an unprivileged user (the image's, else 10001; this process's own
uid when it is not root), a read-only root filesystem with a private tmpfs at /tmp, every capability
dropped, ``no-new-privileges``, a private IPC namespace, an init that reaps zombies, and CPU (share and
lifetime seconds), memory (the cgroup, without swap, and RLIMIT_DATA per process, so one allocation past
the limit raises MemoryError rather than waking the OOM killer), process and open-file limits from
:class:`Limits`. The token and
secrets travel in the spec file (mode 0600, owned by the container's user) that the server reads and
deletes: never on a command line, in the container's configuration, or in an error message.

Every container is labelled with its owner (:func:`corral.runtime.lease.owner_labels`); a keeper process
(:mod:`corral.runtime.keeper`) removes the owner's containers when the owner dies, and
:func:`corral.runtime.gc.collect_garbage` removes any whose owner is gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from ..envs import BUILTINS
from ..errors import RuntimeFailed, RuntimeUnavailable, UsageError
from ..package import is_package
from .base import Limits, Runtime, Server, ServerSpec
from .images import COMMAND, INSIDE, LABEL_ENV, USER_ID, build_image
from .lease import owner_labels
from .process import SOCKET, SPEC_FILE, runtime_dir, write_spec

#: Labels added to the owner's: the server's host folder, and the owner's pid namespace (pids mean
#: nothing across namespaces, so garbage collection judges only containers of its own).
LABEL_FOLDER = "dev.corral.folder"
LABEL_OWNER_PIDNS = "dev.corral.owner-pidns"
#: The port a networked server listens on inside its container.
PORT = 8000
FOLDER_PREFIX = "corral-dkr-"

_DEFAULTS = Limits()
_lock = threading.Lock()
_client: tuple[int, Any] | None = None


def connect() -> Any:
    """A Docker SDK client of the local daemon (one per process), or RuntimeUnavailable saying what to do."""
    global _client
    with _lock:
        if _client is not None and _client[0] == os.getpid():
            return _client[1]
        try:
            import docker  # type: ignore[import-untyped]
        except ImportError as exc:
            raise RuntimeUnavailable("the docker runtime needs the Docker SDK: pip install 'corral[docker]'") from exc
        _probe_socket()
        client = None
        try:
            client = docker.from_env(timeout=120)
            client.ping()
        except docker.errors.DockerException as exc:
            if client is not None:
                client.close()
            raise _no_daemon(_first_line(exc)) from exc
        _client = (os.getpid(), client)
        return client


def _probe_socket() -> None:
    """Fail fast, and without the SDK, when the daemon's Unix socket does not answer: the SDK's constructor
    asks the daemon for its version and, when that fails, leaves its HTTP session's socket open."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return
    path = host[len("unix://"):]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(5)
        try:
            probe.connect(path)
        except OSError as exc:
            raise _no_daemon(f"{path}: {exc.strerror or exc}") from None


def _no_daemon(why: str) -> RuntimeUnavailable:
    return RuntimeUnavailable(f"no Docker daemon answers ({why}): start one with scripts/docker-up, or set DOCKER_HOST")


def parse_image_ref(ref: str) -> tuple[str, str | None]:
    """``"image#env"`` → ``("image", "env")``; ``"image"`` → ``("image", None)``."""
    image, sep, env = ref.partition("#")
    if not image or (sep and not env):
        raise UsageError(f"{ref!r} is not an image reference: use 'IMAGE' or 'IMAGE#ENVIRONMENT'")
    return image, env or None


def pid_namespace() -> str:
    """This process's pid namespace (``pid:[4026531836]``), or ``""`` when it cannot be read."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def remove_container(container: Any) -> None:
    """Kill and remove ``container`` and the host folder it was labelled with; quiet when already gone."""
    from docker.errors import APIError, NotFound  # type: ignore[import-untyped]

    folder = (container.labels or {}).get(LABEL_FOLDER)
    for _ in range(50):
        try:
            container.remove(force=True)
            break
        except NotFound:
            break
        except APIError as exc:  # "removal already in progress": wait for the other remover
            if "in progress" not in str(exc):
                raise RuntimeFailed(f"Docker could not remove container {container.name}: {_first_line(exc)}") from exc
            time.sleep(0.1)
    if folder and os.path.isabs(folder) and os.path.basename(folder).startswith(FOLDER_PREFIX):
        shutil.rmtree(folder, ignore_errors=True)


class ContainerServer(Server):
    """A server in a container; its socket (or published port) and spec file live in ``folder``."""

    runtime = "docker"

    def __init__(self, spec: ServerSpec, folder: Path, image: str) -> None:
        super().__init__(spec)
        self.folder = folder
        self.image = image
        self.container: Any = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is not None:
            return f"http://127.0.0.1:{self.port}"
        return f"unix://{self.folder / SOCKET}"

    @property
    def name(self) -> str | None:
        return self.container.name if self.container is not None else None

    def _state(self) -> dict[str, Any] | None:
        from docker.errors import NotFound

        if self.container is None:
            return None
        try:
            self.container.reload()
        except NotFound:
            return None
        except Exception as exc:  # the daemon went away (requests' errors are not DockerException)
            raise RuntimeFailed(f"Docker does not answer about container {self.name}: {_first_line(exc)}") from exc
        state: dict[str, Any] = self.container.attrs.get("State", {})
        return state

    def alive(self) -> bool:
        state = self._state()
        return bool(state and state.get("Running"))

    def exit_reason(self) -> str | None:
        state = self._state()
        if state is None:
            return "its container is gone" if self.container is not None else "its container was never started"
        if state.get("Running"):
            return None
        limits = self.spec.limits
        if state.get("OOMKilled"):
            return f"the kernel killed it for going past its memory limit ({_limit(limits, 'memory_mb'):g} MiB)"
        code = int(state.get("ExitCode", 0))
        error = f" ({state['Error']})" if state.get("Error") else ""
        if code > 128:
            try:
                sig = signal.Signals(code - 128)
            except ValueError:
                return f"exited with status {code}{error}"
            if sig == signal.SIGXCPU:
                return f"killed by SIGXCPU: it used up its CPU time limit ({_limit(limits, 'cpu_s'):g} s)"
            return f"killed by {sig.name}{error}"
        return f"exited with status {code}{error}"

    def _probe(self) -> None:
        if self.port is None and not (self.folder / SOCKET).exists():
            raise RuntimeFailed("the server's socket does not exist yet")
        super()._probe()

    def _diagnostics(self) -> str:
        if self.container is None:
            return ""
        try:
            text = self.container.logs(tail=30).decode("utf-8", "replace").strip()
        except Exception:
            return ""
        for secret in [*self.spec.secrets.values(), self.spec.token or ""]:
            if secret:
                text = text.replace(secret, "***")
        return f"; the container's output ends with:\n{text[-2000:]}" if text else ""

    def _stop(self) -> None:
        try:
            if self.container is not None:
                remove_container(self.container)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class DockerRuntime(Runtime):
    """Servers in Docker containers (see the module docstring for the defaults and the image convention).

    ``network``: ``"none"`` (default: a Unix socket, no network) or a Docker network such as ``"bridge"``
    (the server's port is published on 127.0.0.1 only). ``user``: ``"UID[:GID]"`` to run as (never root;
    when this process is not root, the folder is writable by its own uid only, which is the default).
    ``keeper``: start the keeper process that removes this process's containers when it dies.
    ``build``: a built-in environment's name (``"echo"``) with no image of that name is served from
    ``build_image(name)``, built on first use (minutes, once) and found in the cache afterwards, and a
    package folder from its image, built (or found) before every start.
    """

    name: ClassVar[str] = "docker"

    def __init__(self, *, network: str = "none", user: str | None = None, keeper: bool = True, build: bool = True,
                 client: Any = None) -> None:
        if network == "host":
            raise UsageError("network='host' would share this machine's network with the server: use 'bridge' "
                             "(its port is published on 127.0.0.1 only)")
        self.network = network
        self.user = user
        self.keeper = keeper
        self.build = build
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client

    def _launch(self, spec: ServerSpec) -> Server:
        from docker.errors import DockerException, ImageNotFound

        image_ref, env = parse_image_ref(spec.env)
        client = self.client
        if self.build and is_package(image_ref):
            from .package_image import build_package

            image_ref = build_package(image_ref, client=client).tag
        try:
            image = client.images.get(image_ref)
        except ImageNotFound as exc:
            if self.build and env is None and image_ref in BUILTINS:
                image = client.images.get(build_image(image_ref, client=client).id)
            else:
                raise RuntimeFailed(f"image {image_ref!r} is not in the local Docker daemon: build it with "
                                    "corral.runtime.images.build_image (images are never pulled)") from exc
        except DockerException as exc:
            raise RuntimeFailed(f"Docker could not inspect image {image_ref!r}: {_first_line(exc)}") from exc
        env = env or (image.labels or {}).get(LABEL_ENV)
        if not env:
            raise RuntimeFailed(f"image {image_ref!r} names no environment to serve (no {LABEL_ENV} label): "
                                f"use '{image_ref}#ENVIRONMENT'")
        uid, gid = self._user(image)
        if self.keeper:
            from .keeper import ensure_keeper

            ensure_keeper()
        folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=runtime_dir()))
        server = ContainerServer(spec, folder, image_ref)
        try:
            self._prepare_folder(server, env, uid, gid)
            server.container = client.containers.create(image.id, **self._options(spec, folder, env, uid, gid))
            server.container.start()
            if self.network != "none":
                server.container.reload()
                bindings = server.container.attrs["NetworkSettings"]["Ports"][f"{PORT}/tcp"]
                server.port = int(bindings[0]["HostPort"])
        except DockerException as exc:
            server.stop()
            raise RuntimeFailed(f"Docker could not start a container of {image_ref!r}: {_first_line(exc)}") from exc
        except BaseException:
            server.stop()
            raise
        return server

    def _user(self, image: Any) -> tuple[int, int]:
        """Who the server runs as: ``user=``, else this process's uid when not root, else the image's user
        when it is numeric and not root, else 10001."""
        configured = self.user
        if configured is None and os.getuid() != 0:
            return os.getuid(), os.getgid()
        configured = configured or (image.attrs.get("Config") or {}).get("User") or ""
        uid_text, _, gid_text = configured.partition(":")
        if uid_text.isdigit() and int(uid_text) != 0:
            uid = int(uid_text)
            return uid, int(gid_text) if gid_text.isdigit() else uid
        if self.user is not None:
            raise UsageError(f"user={self.user!r}: give a numeric, non-root 'UID[:GID]'")
        return USER_ID, USER_ID

    def _prepare_folder(self, server: ContainerServer, env: str, uid: int, gid: int) -> None:
        spec = server.spec
        inner = ServerSpec(env, config=spec.config, secrets=spec.secrets, token=spec.token)
        extra: dict[str, Any] = {"host": "0.0.0.0", "port": PORT, "uds": None} if self.network != "none" else {}
        path = server.folder / SPEC_FILE
        write_spec(path, inner, uds=f"{INSIDE}/{SOCKET}", lease=None, python_path=[], extra=extra)
        if os.getuid() == 0:
            os.chown(server.folder, uid, gid)
            os.chown(path, uid, gid)

    def _options(self, spec: ServerSpec, folder: Path, env: str, uid: int, gid: int) -> dict[str, Any]:
        from docker.types import LogConfig, Ulimit  # type: ignore[import-untyped]

        limits = spec.limits
        memory, processes, cpus = (_limit(limits, n) for n in ("memory_mb", "processes", "cpus"))
        cpu_s, open_files, tmp_mb = (_limit(limits, n) for n in ("cpu_s", "open_files", "tmp_mb"))
        labels = {**owner_labels(), LABEL_FOLDER: str(folder), LABEL_OWNER_PIDNS: pid_namespace(), LABEL_ENV: env}
        ulimits = []
        if cpu_s:
            ulimits.append(Ulimit(name="cpu", soft=int(cpu_s), hard=int(cpu_s) + 1))
        if memory:  # one allocation past the limit fails (MemoryError) before the cgroup's OOM killer acts
            ulimits.append(Ulimit(name="data", soft=int(memory) << 20, hard=int(memory) << 20))
        if open_files:
            ulimits.append(Ulimit(name="nofile", soft=int(open_files), hard=int(open_files)))
        tmpfs = "rw,nosuid,nodev,mode=1777" + (f",size={int(tmp_mb)}m" if tmp_mb else "")
        options: dict[str, Any] = {
            "name": folder.name,
            "command": list(COMMAND),  # whatever the image's CMD (a package image's serves on port 8000)
            "user": f"{uid}:{gid}",
            "labels": labels,
            "environment": dict(spec.environment),
            "volumes": {str(folder): {"bind": INSIDE, "mode": "rw"}},
            "read_only": True,
            "tmpfs": {"/tmp": tmpfs},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "ipc_mode": "private",
            "init": True,
            "hostname": "corral",
            "network_mode": self.network,
            "ulimits": ulimits,
            "log_config": LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
        }
        if self.network != "none":
            options["ports"] = {f"{PORT}/tcp": ("127.0.0.1", None)}
        if memory:
            options["mem_limit"] = options["memswap_limit"] = f"{int(memory)}m"
        if processes:
            options["pids_limit"] = int(processes)
        if cpus:
            options["nano_cpus"] = int(cpus * 1e9)
        return options


def _limit(limits: Limits, name: str) -> float:
    """A limit's value for Docker: the tier default for None, 0 for unlimited."""
    value = getattr(limits, name)
    return float(getattr(_DEFAULTS, name) if value is None else value)


def _first_line(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
