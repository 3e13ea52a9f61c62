"""``corral validate``: prove an environment package, a running server or an image keeps the contract.

What is checked depends on what is named:

- a URL (``http://``, ``ws://``, ``unix://``...): :func:`~corral.testing.check_server` against it;
- an image (``--image``, or a name that is nothing else): started with the Docker runtime, then the same;
- anything else (a package folder, a built-in name, ``module:Class``): :func:`~corral.testing.check_package`,
  whose live part starts the server in ``--runtime`` (default ``subprocess``: a real socket and a fresh
  interpreter that imports the package from its folder, as a deployment would, on any machine; ``inprocess``
  would share the imports and module state of the local checks, ``sandbox`` needs bubblewrap).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import UsageError
from ..package.manifest import TARGET
from ..testing import Outcome, Report, check_package, check_server

URL_SCHEMES = ("http://", "https://", "ws://", "wss://", "unix:")
STYLES = {Outcome.PASSED: "green", Outcome.FAILED: "bold red", Outcome.SKIPPED: "yellow"}


def validate(spec: str, *, runtime: str, image: bool, sample_action: str | None, token: str | None,
             timeout: float, console: Console, reset_options: str | None = None) -> Report:
    """Run the checks that fit ``spec`` (see the module docstring) and return their report."""
    action = _parse_object("--sample-action", sample_action, "the action's fields")
    options = _parse_object("--reset-options", reset_options, "reset's keyword arguments")
    if spec.startswith(URL_SCHEMES):
        with console.status(f"checking the server at {spec}"):
            return check_server(spec, sample_action=action or _sample_from_server(spec, token, timeout),
                                token=token, timeout=timeout, reset_options=options)
    if image or _is_image(spec):
        return _validate_image(spec, action, options, timeout, console)
    if action is not None or options is not None:
        raise UsageError("--sample-action and --reset-options apply to a URL or an image; a package sets "
                         "validate.sample_action and validate.reset_options in its corral.yaml")
    with console.status(f"checking {spec} (live run in a {runtime})"):
        return check_package(spec, runtime=runtime, timeout=timeout)


def _validate_image(image: str, action: dict[str, Any] | None, options: dict[str, Any] | None, timeout: float,
                    console: Console) -> Report:
    from ..runtime import launch

    with console.status(f"starting {image} in Docker"):
        server = launch(image, runtime="docker")
    with server, console.status(f"checking {image} at {server.url}"):
        report = check_server(server.url, sample_action=action or _sample_from_server(server.url, server.token,
                                                                                      timeout),
                              token=server.token, timeout=timeout, reset_options=options)
    report.url = f"{image} ({server.url})"
    return report


def _is_image(spec: str) -> bool:
    """Whether ``spec`` names an image: not a path, a built-in, an installed environment, an importable
    ``module:Class`` or a bare word (an unknown name, which check_package reports)."""
    from ..envs import BUILTINS, installed

    if spec in BUILTINS or spec in installed() or os.path.exists(spec) or spec.startswith((".", os.sep, "~")):
        return False
    if TARGET.match(spec):
        try:
            return importlib.util.find_spec(spec.partition(":")[0]) is None
        except (ImportError, ValueError):
            return True
    return ":" in spec or "/" in spec


def _parse_object(option: str, text: str | None, what: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{option} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object ({what}), not {text!r}")
    return value


def _sample_from_server(url: str, token: str | None, timeout: float) -> dict[str, Any]:
    """A sample action built from the action schema the server publishes at ``/schema``."""
    from ..client._base import http_url, unix_socket_path

    unix_path = unix_socket_path(url)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    client = (httpx.Client(base_url="http://localhost", transport=httpx.HTTPTransport(uds=unix_path),
                           headers=headers, timeout=timeout) if unix_path is not None
              else httpx.Client(base_url=http_url(url), headers=headers, timeout=timeout))
    try:
        with client:
            response = client.get("/schema")
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach {url} ({type(exc).__name__}: {exc}); is the server running?") from exc
    if response.status_code != 200:
        raise UsageError(f"GET /schema at {url} answered {response.status_code}; pass --sample-action '{{...}}'"
                         + (" and --token" if response.status_code == 401 else ""))
    schema = response.json().get("action", {})
    try:
        action = sample_from_schema(schema, schema.get("$defs", {}))
    except (ValueError, KeyError) as exc:
        raise UsageError(f"cannot make a sample action from the server's action schema ({exc}); pass "
                         "--sample-action '{...}'") from exc
    if not isinstance(action, dict):
        raise UsageError("the server's action schema is not an object schema; pass --sample-action '{...}'")
    return action


def sample_from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A value that fits a JSON schema: its first example, default, enum member or const, else a plain value
    of its type (objects get their required properties). Raises ValueError for a schema it cannot fill."""
    if "$ref" in schema:
        return sample_from_schema(defs[schema["$ref"].rpartition("/")[2]], defs)
    for key in ("examples", "enum"):
        if schema.get(key):
            return schema[key][0]
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return sample_from_schema(schema[key][0], defs)
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: sample_from_schema(properties.get(name, {}), defs) for name in schema.get("required", [])}
    plain = {"string": "corral", "integer": 0, "number": 0.0, "boolean": False, "array": [], "null": None}
    if kind not in plain:
        raise ValueError(f"no value for a schema of type {kind!r}")
    return plain[kind]


def print_report(report: Report, console: Console, *, as_json: bool) -> None:
    """The report as a pass/fail table (or JSON on stdout), and a closing line saying how it went."""
    if as_json:
        data = {"subject": report.subject, "ok": report.ok,
                "checks": [{"name": c.name, "outcome": c.outcome.value, "message": c.message} for c in report.checks]}
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"corral validate {report.subject}", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        table.add_row(check.name, f"[{STYLES[check.outcome]}]{check.outcome.value}[/]", escape(check.message))
    console.print(table)
    counts = {outcome: sum(c.outcome is outcome for c in report.checks) for outcome in Outcome}
    console.print(f"{counts[Outcome.PASSED]} passed, {counts[Outcome.FAILED]} failed, "
                  f"{counts[Outcome.SKIPPED]} skipped")
