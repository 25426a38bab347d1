"""A loopback stand-in for the Hugging Face Hub's file endpoint, for the download path.

Serves `root/{org}/{name}/{file}` at `/{org}/{name}/resolve/{revision}/{file}` for HEAD and GET
with the headers `huggingface_hub` reads (X-Repo-Commit, ETag, Content-Length); a missing file
is a 404 with X-Error-Code EntryNotFound, as the Hub answers. Point HF_ENDPOINT at `url`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)$")


class Hub(NamedTuple):
    url: str
    requests: list[str]  # "METHOD path" of every request, in order


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        match = _RESOLVE.match(self.path.split("?")[0])
        file = self.server.root / match["repo"] / match["file"] if match else None
        if file is None or not file.is_file():
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound" if match else "RepoNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        content = file.read_bytes()
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", '"' + hashlib.sha256(content).hexdigest() + '"')
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if body:
            self.wfile.write(content)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    requests: list[str]


@contextmanager
def serve_hub(root: Path) -> Iterator[Hub]:
    """The stand-in Hub for the repositories under `root`, on a free port of 127.0.0.1."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.root, server.requests = root, []
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        host, port = server.server_address[:2]
        yield Hub(f"http://{host}:{port}", server.requests)
    finally:
        server.shutdown()
        server.server_close()


class HubRuns(NamedTuple):
    online: Any  # the last JSON line each run printed
    offline: Any
    requests: list[str]  # what the online run asked the Hub


def online_then_offline(folder: Path, repo: str, script: str, tmp_path: Path) -> HubRuns:
    """`script` in a new Python twice, with HF_HOME under `tmp_path`: first with HF_ENDPOINT at
    a stand-in Hub serving `folder` as `repo`, then with HF_HUB_OFFLINE, which reads the
    Hugging Face cache alone. Each run must succeed and print JSON on its last line."""
    (tmp_path / "hub" / repo).parent.mkdir(parents=True)
    (tmp_path / "hub" / repo).symlink_to(folder)
    environment = {**os.environ, "HF_HOME": str(tmp_path / "hf-home")}
    with serve_hub(tmp_path / "hub") as hub:
        online = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                env={**environment, "HF_ENDPOINT": hub.url})
    assert online.returncode == 0, online.stderr[-2000:]
    offline = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env={**environment, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0, offline.stderr[-2000:]
    return HubRuns(*(json.loads(run.stdout.strip().splitlines()[-1]) for run in (online, offline)),
                   hub.requests)
