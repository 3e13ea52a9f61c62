"""The program that runs inside each sandbox: it sets the limits, runs the submission, calls its function.

It is never imported by the host: :mod:`corral_coding.executor` passes its source to the system's
``python3`` inside bubblewrap, with a JSON request on stdin (the submission, the function's name, the
arguments of each call, the limits, the seed, a random marker, and the number of an inherited pipe). It
writes one line per event to that pipe, each starting with the marker: ``started`` (before the submission
runs), ``loaded`` (or ``load_error``, ``exit``, ``missing``), then ``result`` per call with the returned
value as JSON (or the exception raised), then ``done``. It reports values, never verdicts: the expected
values stay on the host, which compares them, so nothing the submission does in here can earn a test it
does not pass. Standard library only; it must run on any Python 3 the system has.
"""

from __future__ import annotations

import builtins
import copy
import json
import os
import random
import resource
import sys
import traceback
import types
from collections.abc import Callable
from typing import Any

SOURCE = "/tmp/solution.py"
MAX_VALUE = 65536


def main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    channel = os.fdopen(request.pop("channel"), "wb", buffering=0)
    marker = request.pop("marker").encode()

    def send(event: dict[str, Any]) -> None:
        channel.write(marker + b" " + json.dumps(event).encode() + b"\n")

    send({"event": "started"})
    code = request["code"]
    with open(SOURCE, "w", encoding="utf-8") as file:
        file.write(code)
    limit(request["limits"])
    # With the seed of the episode (as PYTHONHASHSEED is), the submission's `random` replays exactly.
    random.seed(request["seed"])
    if "" in sys.path:
        sys.path.remove("")
    module = types.ModuleType("__main__")
    module.__file__ = SOURCE
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module
    try:
        exec(compile(code, SOURCE, "exec"), module.__dict__)
    except SystemExit as exc:
        send({"event": "exit", "code": _exit_code(exc)})
        return _exit_code(exc)
    except BaseException as exc:
        send({"event": "load_error", **_describe(exc)})
        # The traceback starts at the submission: the harness's own frame is no business of the agent's.
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next if exc.__traceback__ else None)
        return 1
    send({"event": "loaded"})
    name = request.get("function")
    if name:
        function = module.__dict__.get(name)
        if not callable(function):
            send({"event": "missing", "function": name})
            return 1
        for index, args in enumerate(request["calls"]):
            send({"event": "result", "index": index, **_call(function, args)})
    send({"event": "done"})
    sys.stdout.flush()
    return 0


def limit(limits: dict[str, Any]) -> None:
    """Lower soft and hard limits together: without CAP_SYS_RESOURCE the submission cannot raise them."""
    for name, value in limits.items():
        soft = value[0] if isinstance(value, list) else value
        hard = value[1] if isinstance(value, list) else value
        resource.setrlimit(getattr(resource, name), (soft, hard))


def _call(function: Callable[..., Any], args: list[Any]) -> dict[str, Any]:
    try:
        value = function(*copy.deepcopy(args))
    except BaseException as exc:
        return _describe(exc)
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return {"error": "ValueNotJSON", "message": f"returned a {type(value).__name__}, which is not JSON data"}
    if len(text) > MAX_VALUE:
        return {"error": "ValueTooLarge", "message": f"returned {len(text)} characters of JSON (at most {MAX_VALUE})"}
    return {"value": json.loads(text)}


def _describe(exc: BaseException) -> dict[str, Any]:
    try:
        message = str(exc)[:500]
    except BaseException:
        message = ""
    return {"error": type(exc).__name__, "message": message, "errno": getattr(exc, "errno", None)}


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # as Python does for sys.exit("message")
    return 1


if __name__ == "__main__":
    sys.exit(main())
