"""`brogue verify`: check a cache, and repair what is safe to repair (`verify.py`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brogue.command import Command
from brogue.errors import SOME_FAILED


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cache", type=Path, metavar="DIR", help="the cache folder")
    parser.add_argument("--repair", action="store_true",
                        help="rebuild the manifest from the shards and remove orphan temporary "
                        "files; finished shards are never deleted")  # fmt: skip


def run_verify(args: argparse.Namespace) -> int:
    from .verify import verify

    verdict = verify(args.cache, repair=args.repair)
    for problem in verdict.problems:
        print(f"  {problem}", file=sys.stderr)
    print(verdict.line())
    return SOME_FAILED if verdict.problems else 0


COMMANDS = {
    "verify": Command("check a shard cache: shards, frame ranges, duplicates, manifest",
                      add_verify_arguments, run_verify),
}
