"""The program that runs inside every sandbox: it loads the submitted code and calls it on the test inputs.

The host runs this file's text with the system's ``python3 -S -s -B -c`` inside bubblewrap; it is never
imported on the host, and it uses the standard library only. It reads one JSON job from stdin::

    {"marker": "<random per run>", "fd": 3, "code": "...", "entry_point": "name",
     "calls": ["[1, 2]", ...], "rlimits": {"RLIMIT_CPU": [soft, hard], ...}}

applies the rlimits to itself (they are inherited by anything the code starts), runs the code as
``__main__``, then calls ``entry_point(*args)`` for each test's JSON-encoded arguments, and writes one line
per event to the result channel ``fd``: the marker, a space, and a JSON record (``start``, ``loaded``,
``load_error``, ``test``, ``memory``, ``done``). Expected values never come here: the host compares the
returned values itself, so nothing the code prints or writes can pass a test it did not pass.

The submitted code's own stdout and stderr are the process's; the host captures and caps them.
"""

import json
import os
import resource
import sys
import traceback

#: Largest JSON text of one returned value that is reported (bigger ones fail the test).
MAX_VALUE_CHARS = 200_000
#: Deepest nesting of a returned value that is reported.
MAX_DEPTH = 100


class _Unreportable(Exception):
    """A returned value that cannot travel as plain JSON."""


def _plain(value, depth=0):
    """``value`` as plain JSON data (tuples become lists); _Unreportable for anything else."""
    if depth > MAX_DEPTH:
        raise _Unreportable("is nested too deeply")
    if value is None or isinstance(value, (bool, int, str)):
        if type(value) not in (bool, int, str, type(None)):
            raise _Unreportable(f"is a {type(value).__name__} (a subclass of {type(value).__mro__[1].__name__})")
        return value
    if type(value) is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise _Unreportable(f"is {value!r}, which JSON cannot carry")
        return value
    if type(value) in (list, tuple):
        return [_plain(item, depth + 1) for item in value]
    if type(value) is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Unreportable(f"is a dict with a {type(key).__name__} key ({key!r:.40}); use str keys")
            out[key] = _plain(item, depth + 1)
        return out
    raise _Unreportable(f"is a {type(value).__name__}, which is not plain JSON data")


def _describe(exc):
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:500]


def main():
    job = json.loads(sys.stdin.buffer.read())
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    channel = job["fd"]
    os.set_inheritable(channel, False)
    marker = job["marker"].encode()

    def send(record):
        data = marker + b" " + json.dumps(record, allow_nan=False).encode() + b"\n"
        while data:
            data = data[os.write(channel, data):]

    for name, (soft, hard) in job["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    calls = job["calls"]
    entry_point = job["entry_point"]
    code_text = job["code"]
    del job
    # Reserved now: a MemoryError must still be reportable.
    memory_record = {"kind": "memory"}

    send({"kind": "start"})
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(code_text, "solution.py", "exec"), namespace)
        function = namespace.get(entry_point)
        if not callable(function):
            raise NameError(f"solution.py defines no function named {entry_point!r}")
    except MemoryError as exc:
        send(memory_record)
        traceback.print_exc()
        send({"kind": "load_error", "error": _describe(exc)})
        return 1
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the code must define the function
        traceback.print_exc()
        send({"kind": "load_error", "error": _describe(exc)})
        return 1
    send({"kind": "loaded"})

    for index, encoded in enumerate(calls):
        args = json.loads(encoded)
        try:
            value = function(*args)
        except MemoryError as exc:
            send(memory_record)
            send({"kind": "test", "index": index, "error": _describe(exc)})
            continue
        except BaseException as exc:
            send({"kind": "test", "index": index, "error": _describe(exc)})
            continue
        try:
            plain = _plain(value)
            text = json.dumps(plain, allow_nan=False)
        except _Unreportable as exc:
            send({"kind": "test", "index": index, "error": f"the returned value {exc}"})
            continue
        except (RecursionError, MemoryError, ValueError) as exc:
            send({"kind": "test", "index": index, "error": f"the returned value cannot be reported: {_describe(exc)}"})
            continue
        if len(text) > MAX_VALUE_CHARS:
            send({"kind": "test", "index": index, "error": f"the returned value is too large ({len(text)} characters "
                  f"as JSON; at most {MAX_VALUE_CHARS})"})
            continue
        send({"kind": "test", "index": index, "value": plain})
    send({"kind": "done"})
    return 0


if __name__ == "__main__":
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    sys.exit(code)
