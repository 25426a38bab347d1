"""A request's audio into a temporary file, within the server's limits.

A client sends either a multipart form with one file (field `file`) or the audio itself as the
body. Its bytes are counted as they arrive, whatever Content-Length claims, and the body
stops at the limit. The file's name, when a form gives one, only labels the answer: the file
is written under a name of the server's choosing, in a folder the caller deletes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message

from brogue.errors import BrogueError

FORM_FIELD = "file"
RAW_NAME = "upload"  # the label of audio sent as the whole body
# Content types of a raw body that may be audio: libsndfile then reads the bytes themselves.
RAW_TYPES = ("audio/", "application/octet-stream")
_CHUNK = 1 << 16


class BodyTooLarge(BrogueError):
    """A body over the server's limit."""


class NotAudio(BrogueError):
    """A Content-Type that cannot hold audio."""


class NoFile(BrogueError):
    """A form without the audio file."""


def limited(request: Request, max_bytes: int) -> Request:
    """`request`, whose body raises BodyTooLarge once more than `max_bytes` have come."""
    too_large = BodyTooLarge(f"the request body is over this server's limit of {max_bytes:,} "
                             "bytes")  # fmt: skip
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    received = 0
    receive: Callable[[], Awaitable[Message]] = request.receive

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > max_bytes:
            raise too_large
        return message

    return Request(request.scope, counted)


async def save_upload(request: Request, path: Path) -> str:
    """Write the audio `request` carries to `path`; return the name that labels it."""
    content_type = request.headers.get("content-type", "").lower()
    with open(path, "wb") as out:
        if content_type.startswith("multipart/form-data"):
            async with request.form(max_files=1, max_fields=8) as form:
                upload = form.get(FORM_FIELD)
                if not isinstance(upload, UploadFile):
                    raise NoFile(f"the form has no file in its field {FORM_FIELD!r}")
                while chunk := await upload.read(_CHUNK):
                    out.write(chunk)
                return Path(upload.filename or RAW_NAME).name or RAW_NAME
        if content_type and not content_type.startswith(RAW_TYPES):
            raise NotAudio(f"a body of type {content_type.split(';')[0]} is not audio: send the "
                           f"file as multipart/form-data field {FORM_FIELD!r} or as the body "
                           "itself")  # fmt: skip
        async for chunk in request.stream():
            out.write(chunk)
    return RAW_NAME


async def discard(request: Request) -> None:
    """Read `request`'s body to its end, keeping none of it."""
    async for _ in request.stream():
        pass
