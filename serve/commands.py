"""The `serve` verb: a run behind uvicorn, one process or several."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from brogue.command import Command, positive_int
from brogue.errors import require
from brogue.inference import run_folder
from brogue.serve.settings import DEFAULT_MAX_BYTES, DEFAULT_MAX_REQUESTS, DEFAULT_MAX_SECONDS

SETTINGS_VARIABLE = "BROGUE_SERVE_SETTINGS"  # how worker processes learn their settings
TOKEN_VARIABLE = "BROGUE_TOKEN"
# One line per request from brogue.serve, uvicorn's own lines, no access log (ours says more).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(process)d %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line"}},
    "loggers": {name: {"handlers": ["stderr"], "level": "INFO", "propagate": False}
                for name in ("brogue.serve", "uvicorn", "uvicorn.error")},
}  # fmt: skip


def _flags(parser: argparse.ArgumentParser) -> None:
    flag = parser.add_argument
    flag("run", type=Path, help="a run folder written by fit (or a sweep's best/)")
    flag("--host", default="127.0.0.1",
         help="address to listen on; 0.0.0.0 opens it to the network")  # fmt: skip
    flag("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    flag("--workers", type=positive_int, default=1,
         help="processes, each with its own model (about 1 GB each)")  # fmt: skip
    flag("--token", default=os.environ.get(TOKEN_VARIABLE),
         help=f"every /v1 call needs 'Authorization: Bearer TOKEN' (default: ${TOKEN_VARIABLE})")
    flag("--max-bytes", type=positive_int, default=DEFAULT_MAX_BYTES,
         help="largest request body; a larger one gets 413")  # fmt: skip
    flag("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
         help="longest audio; a longer one gets 413")  # fmt: skip
    flag("--max-requests", type=positive_int, default=DEFAULT_MAX_REQUESTS,
         help="requests one worker holds at once; the next gets 503 and Retry-After")
    flag("--cors-origin", action="append", default=[], metavar="ORIGIN",
         help="allow the pages of ORIGIN to call the API (repeatable; default: CORS off)")


def _serve(args: argparse.Namespace) -> int:
    run_folder.check_finished(args.run)  # before the frameworks load: a wrong path is told at once
    uvicorn = require("uvicorn", "serve", "brogue serve")
    require("fastapi", "serve", "brogue serve")
    from brogue.serve.app import create_app
    from brogue.serve.inference import Model, check_run
    from brogue.serve.settings import Settings

    settings = Settings(args.run, args.token, args.max_bytes, args.max_seconds,
                        args.max_requests, tuple(args.cors_origin))  # fmt: skip
    common = {"host": args.host, "port": args.port, "log_config": LOGGING, "access_log": False}
    if args.workers == 1:  # a run that cannot load fails here, in one line
        uvicorn.run(create_app(settings, Model.load(args.run)), **common)
        return 0
    check_run(args.run)  # each worker then loads the model itself
    os.environ[SETTINGS_VARIABLE] = settings.to_json()
    uvicorn.run("brogue.serve.commands:app_from_environment", factory=True, workers=args.workers,
                **common)
    return 0


def app_from_environment():  # noqa: ANN201 - FastAPI, imported only here
    """uvicorn's factory, in each worker process: the app of the settings `_serve` left."""
    from brogue.serve.app import create_app
    from brogue.serve.settings import Settings

    return create_app(Settings.from_json(os.environ[SETTINGS_VARIABLE]))


COMMANDS = {
    "serve": Command("an HTTP API and a page that tell the accent of a recording",
                     _flags, _serve),
}
