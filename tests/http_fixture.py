"""The local HTTP file server of the download tests; it lives in dev.http_server, which the
fault drill (`make stress`) uses too."""

from dev.http_server import Faults, FileServer, Seen, etag, serve

__all__ = ["Faults", "FileServer", "Seen", "etag", "serve"]
