"""The one base class of errors a person can fix, and the hint for a missing optional extra.

`brogue.main` prints a BrogueError as one line and exits with its `exit_code`. Anything
else is a bug and keeps its traceback.

Exit codes of every verb: 0 all done; 3 finished, but some inputs failed (each listed);
1 fatal (a BrogueError); 2 usage (argparse); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import importlib
from types import ModuleType

SOME_FAILED = 3  # the exit code of a verb that finished but could not use some of its inputs
INTERRUPTED = 130  # Ctrl-C, for every verb (`brogue.main`)


class BrogueError(Exception):
    """Bad input or environment: a one-line message naming the file and the reason."""

    exit_code = 1


class MissingExtraError(BrogueError):
    """An optional dependency is not installed."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import `module`, or say which extra of brogue brings it, in one line."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is None or module.split(".")[0] != error.name.split(".")[0]:
            raise  # the module is there but something it imports is broken: a real error
        raise MissingExtraError(
            f"{purpose} needs {module.split('.')[0]}: pip install 'brogue[{extra}]'"
        ) from None
