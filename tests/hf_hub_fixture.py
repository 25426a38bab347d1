"""A loopback stand-in for the Hugging Face Hub's file endpoint, for the download path.

Serves `root/{org}/{name}/{file}` at `/{org}/{name}/resolve/{revision}/{file}` for HEAD and GET
with the headers `huggingface_hub` reads (X-Repo-Commit, ETag, Content-Length); a missing file
is a 404 with X-Error-Code EntryNotFound, as the Hub answers. Point HF_ENDPOINT at `url`.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

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
