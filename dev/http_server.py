"""A local HTTP file server for download tests and the fault drill: Range support, request
log, one-off faults.

Serves the files of one folder on 127.0.0.1 (port 0, so tests never collide). It understands
`Range: bytes=N-` like a real static server (206, or 416 past the end), sends an ETag (a hash
of the content) and honours `If-Range` (a Range whose ETag no longer matches gets the whole new
file, 200), records every request, and can be told to cut the next response short or to ignore
Range requests, which are the faults a resumable download has to survive.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class Faults:
    """What the server should get wrong; `cut_after` applies to the next response only."""

    cut_after: int | None = None  # send the full headers, then only this many body bytes
    ignore_range: bool = False  # answer 200 with the whole file, as servers without Range do


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    path: str
    range: str | None
    if_range: str | None = None


@dataclass
class FileServer:
    """A running server; `url` ends with "/" and maps to `root`."""

    root: Path
    url: str
    faults: Faults
    requests: list[Seen] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        state = self.server.state
        name = unquote(urlsplit(self.path).path).lstrip("/")
        range_header, if_range = self.headers.get("Range"), self.headers.get("If-Range")
        state.requests.append(Seen(name, range_header, if_range))
        file = state.root / name
        if not file.is_file():
            self.send_error(404)
            return
        body = file.read_bytes()
        tag = etag(body)
        start = 0
        if range_header and not state.faults.ignore_range and if_range in (None, tag):
            start = int(range_header.removeprefix("bytes=").removesuffix("-"))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("ETag", tag)
        self.end_headers()
        cut, state.faults.cut_after = state.faults.cut_after, None
        self.wfile.write(body[start:] if cut is None else body[start : start + cut])

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


def etag(body: bytes) -> str:
    """The server's ETag for a file's content."""
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: FileServer


@contextmanager
def serve(root: Path) -> Iterator[FileServer]:
    """Serve `root` from a daemon thread for the duration of the `with` block."""
    server = _Server(("127.0.0.1", 0), _Handler)
    host, port = server.server_address[:2]
    server.state = FileServer(root=root, url=f"http://{host}:{port}/", faults=Faults())
    # A short poll keeps shutdown (and so each test's teardown) quick.
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield server.state
    finally:
        server.shutdown()
        server.server_close()
