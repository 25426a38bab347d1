"""The app factory: routes that translate HTTP into calls of `inference` and `batcher`, and the
one table that maps each error to its status code.

Everything a server holds (model, batcher, limits) lives on the app it builds: two apps in one
process share nothing.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brogue.errors import BrogueError
from brogue.serve.batcher import Batcher
from brogue.serve.figure import figure_json
from brogue.serve.inference import AudioError, Model, TooLong, Unreadable, decode
from brogue.serve.settings import Settings
from brogue.serve.upload import BodyTooLarge, NoFile, NotAudio, discard, limited, save_upload

log = logging.getLogger("brogue.serve")
# Files decoded at once: decoding holds the file's samples at their own rate (23 MB for a
# minute of 48 kHz stereo float), the rest of the requests wait for a turn.
DECODERS = 2
RETRY_AFTER_S = 1


class Busy(BrogueError):
    """The worker holds as many requests as it may."""


class Unauthorized(BrogueError):
    """A /v1 call without the server's token."""


class NoFrames(BrogueError):
    """Audio that decoded but gave the encoder nothing to hear."""


# The status of every error a client can cause; the most specific class wins.
STATUS = {
    Unauthorized: 401,
    BodyTooLarge: 413,
    TooLong: 413,
    NotAudio: 415,
    NoFile: 422,
    AudioError: 422,
    NoFrames: 422,
    Busy: 503,
    ClientDisconnect: 400,  # nobody hears it; it keeps a client that left out of the error log
}
HEADERS = {
    Unauthorized: {"WWW-Authenticate": "Bearer"},
    Busy: {"Retry-After": str(RETRY_AFTER_S)},
}


async def _client_error(request: Request, error: Exception) -> JSONResponse:
    kind = next(kind for kind in type(error).__mro__ if kind in STATUS)
    return JSONResponse({"detail": str(error)}, STATUS[kind], HEADERS.get(kind))


class RequestLog:
    """One line per request: method, path, status and milliseconds (a pure ASGI middleware,
    which leaves the body's stream alone)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500  # an exception that escapes is a 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            log.info("%s %s %d %.0f ms", scope["method"], scope["path"], status,
                     (time.perf_counter() - started) * 1000)


class Gate:
    """At most `limit` requests held at once. The event loop is one thread: a count suffices."""

    def __init__(self, limit: int):
        self.limit, self.held = limit, 0

    @property
    def full(self) -> bool:
        return self.held >= self.limit

    def busy(self) -> Busy:
        return Busy(f"this worker is busy with {self.held} requests; retry in {RETRY_AFTER_S} s")

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self.held += 1
        try:
            yield
        finally:
            self.held -= 1


def create_app(settings: Settings, model: Model | None = None) -> FastAPI:
    """The server of `settings.run` (`model`, when given, is that run already loaded)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.model = model or await anyio.to_thread.run_sync(Model.load, settings.run)
        app.state.batcher = Batcher(app.state.model.predict)
        yield
        app.state.batcher.close()

    app = FastAPI(title="brogue", summary="The UK/Ireland English accent of a recording",
                  lifespan=lifespan)  # fmt: skip
    gate = Gate(settings.max_requests)
    decoders = anyio.CapacityLimiter(DECODERS)
    for kind in STATUS:
        app.add_exception_handler(kind, _client_error)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])  # fmt: skip

    app.add_middleware(RequestLog)

    async def authorised(request: Request) -> None:
        if settings.token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {settings.token}".encode()):
            raise Unauthorized("this server needs the header 'Authorization: Bearer <token>'")

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorised)])

    @v1.post("/predict", openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary"}}}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    }}})  # fmt: skip
    async def predict(request: Request, figure: bool = False) -> JSONResponse:
        """The accent of one recording (wav, flac, ogg, mp3, ...), sent as the form field
        `file` or as the body: the JSON line of `brogue predict --json`, and with
        `figure=true` the waveform's outline and the log-mel for drawing it."""
        if gate.full:
            # The body is read and dropped first: a reply before the client has sent it all
            # would reset the connection, and the client would never see the 503.
            await discard(limited(request, settings.max_bytes))
            raise gate.busy()
        with gate.hold():
            with tempfile.TemporaryDirectory(prefix="brogue-serve-") as folder:
                path = Path(folder) / "audio"
                name = await save_upload(limited(request, settings.max_bytes), path)
                waveform = await anyio.to_thread.run_sync(
                    decode, path, name, settings.max_seconds, limiter=decoders)
                seen = request.app.state.model.evidence.seen_in_training(path)
            prediction = await request.app.state.batcher.predict(name, waveform)
        if isinstance(prediction, Unreadable):
            raise NoFrames(prediction.reason)
        answer = prediction.to_json()
        answer.update(request.app.state.model.evidence.claims(answer, seen))
        if figure:
            answer["figure"] = figure_json(prediction)
        return JSONResponse(answer)  # already JSON's types: no model to validate it against

    @v1.get("/model")
    async def describe(request: Request) -> dict[str, Any]:
        """The run being served: classes, encoder, cache, family, test score and the limits."""
        limits = {"max_bytes": settings.max_bytes, "max_seconds": settings.max_seconds}
        return {**request.app.state.model.description, "limits": limits}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """200 once the model is loaded (uvicorn answers nothing before)."""
        return {"status": "ok"}

    app.include_router(v1)
    app.mount("/", StaticFiles(directory=str(files("brogue.serve") / "static"), html=True),
              name="page")
    return app
