"""A sweep worker process's entry point: silence the frameworks first, then run trials.

Kept apart from `train.sweep`, which imports Keras: a spawned worker imports this module to find
its target, and the frameworks' start-up noise must be silenced before Keras loads.
"""

from __future__ import annotations

from typing import Any


def work(arguments: dict[str, Any]) -> None:
    from brogue.quiet import quiet_frameworks

    quiet_frameworks()
    from brogue.train.sweep import run_worker

    run_worker(**arguments)
