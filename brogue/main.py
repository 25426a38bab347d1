"""The `brogue` command: one verb per job, from audio to accents.

    brogue extract   run an encoder once over a corpus into the shard cache; brogue verify
    brogue fit       train a model on the cache; brogue evaluate, sweep, predict, export
    brogue yamnet    what YAMNet hears in audio files
    brogue serve     a run's accent over HTTP and in a browser page (pip install 'brogue[serve]')

Exit codes, the same for every verb: 0 done; 3 done, but some inputs failed (each listed);
1 an error a person can fix, printed as one line (`--verbose` shows the traceback and the
frameworks' start-up logs); 2 usage; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
import warnings
from collections.abc import Sequence

from brogue import __version__
from brogue.command import Command
from brogue.errors import INTERRUPTED, BrogueError
from brogue.quiet import quiet_frameworks

# Modules whose COMMANDS tables make up the verbs, in the order `brogue --help` lists them (the
# cache's through its front door). They import no framework at import time, so `--help` and
# decode workers start at once. Named, not imported: main stands over every layer of
# pyproject's import-linter contract, which leaves it out.
COMMAND_MODULES = ("brogue.extract.commands", "brogue.cache", "brogue.train.commands",
                   "brogue.inference.commands", "brogue.serve.commands")  # fmt: skip


def commands() -> dict[str, Command]:
    table: dict[str, Command] = {}
    for name in COMMAND_MODULES:
        table.update(importlib.import_module(name).COMMANDS)
    return table


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Append each flag's default, unless its help already speaks of it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser(table: dict[str, Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brogue", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"brogue {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true",
                        help="show tracebacks and the frameworks' start-up logs")  # fmt: skip
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, command in table.items():
        command.add_arguments(verbs.add_parser(
            verb, help=command.help, description=command.help, parents=[common],
            formatter_class=_DefaultsFormatter,
        ))  # fmt: skip
    return parser


def _check_verb(parser: argparse.ArgumentParser, argv: Sequence[str],
                table: dict[str, Command]) -> None:  # fmt: skip
    """A misspelt verb is answered with the verb it is closest to, as git does."""
    verb = next((word for word in argv if not word.startswith("-")), None)
    if verb is None or verb in table:
        return
    close = difflib.get_close_matches(verb, table, n=1)
    if close:
        parser.error(f"unknown verb {verb!r}; did you mean {close[0]!r}?")


def main(argv: Sequence[str] | None = None, table: dict[str, Command] | None = None) -> int:
    table = table or commands()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(table)
    _check_verb(parser, argv, table)
    args = parser.parse_args(argv)
    if not args.verbose:
        quiet_frameworks()
    warnings.formatwarning = lambda message, category, *_: f"warning: {message}\n"
    try:
        return table[args.verb].run(args)
    except BrogueError as error:
        if args.verbose:
            raise
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        if args.verbose:
            raise
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
