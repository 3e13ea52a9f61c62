"""A stand-in for the Hugging Face Hub on 127.0.0.1: just enough of its HTTP API for ``create_repo`` and
``upload_folder`` (no hub is reachable from the test machines), recording every request it gets.

It tells the client to send every file inline (``uploadMode: regular``); the real hub moves binary files
through its own large-file storage, which ``huggingface_hub`` handles without Corral's involvement.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Hub:
    """The server's state: requests received, repositories created, files committed (path: bytes)."""

    refuse_with: int | None = None
    requests: list[Recorded] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path.split('?')[0]}" for r in self.requests]


_REPO = r"/api/spaces/(?P<repo>[^/]+/[^/]+)"


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> bytes:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hub.requests.append(Recorded(self.command, self.path, dict(self.headers), body))
            return body

        def do_GET(self) -> None:
            self._record()
            if hub.refuse_with:
                self._reply(hub.refuse_with, {"error": "Invalid credentials in Authorization header"})
            else:
                self._reply(404, {"error": "Repository not found"})

        def do_POST(self) -> None:
            body = self._record()
            path = self.path.split("?")[0]
            if hub.refuse_with:
                self._reply(hub.refuse_with, {"error": "Invalid credentials in Authorization header"})
            elif path == "/api/repos/create":
                payload = json.loads(body)
                hub.created.append(payload)
                repo_id = f"{payload['organization']}/{payload['name']}"
                hub.files.setdefault(repo_id, {})
                self._reply(200, {"url": f"{hub.url}/spaces/{repo_id}", "name": repo_id})
            elif path == "/api/validate-yaml":
                self._reply(200, {"errors": [], "warnings": []})
            elif match := re.fullmatch(_REPO + r"/preupload/main", path):
                files = json.loads(body)["files"]
                self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                             "oid": None} for f in files]})
            elif match := re.fullmatch(_REPO + r"/commit/main", path):
                repo_id = match["repo"]
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                header = next(line["value"] for line in lines if line["key"] == "header")
                for line in lines:
                    if line["key"] == "file":
                        value = line["value"]
                        hub.files[repo_id][value["path"]] = base64.b64decode(value["content"])
                oid = hashlib.sha1(body).hexdigest()
                hub.commits.append({"repo": repo_id, "summary": header.get("summary"), "oid": oid})
                self._reply(200, {"commitUrl": f"{hub.url}/spaces/{repo_id}/commit/{oid}", "commitOid": oid,
                                  "pullRequestUrl": None})
            else:
                self._reply(404, {"error": f"no route {path} in the test hub"})

    return Handler


class HubServer:
    """``with HubServer() as hub:`` serves on 127.0.0.1 (an ephemeral port) until the block ends."""

    def __init__(self, refuse_with: int | None = None) -> None:
        self.hub = Hub(refuse_with=refuse_with)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.hub))
        self.hub.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="test-hub", daemon=True)

    def __enter__(self) -> Hub:
        self.thread.start()
        return self.hub

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
