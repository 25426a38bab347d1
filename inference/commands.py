"""`brogue yamnet FILE...`: what YAMNet hears in each file, the verb of `brogue.inference`.

For each file: its duration, its number of YAMNet's frames (0.96 s windows every 0.48 s), the
three AudioSet classes with the highest mean score, and how many frames YAMNet calls Speech.
Files reach their frames by inference's one path (`inference.predict.encoded`: decoded by a
worker, a long one in blocks), as `predict`'s do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from brogue.command import Command
from brogue.errors import SOME_FAILED
from brogue.extract.commands import (
    add_engine_arguments,
    add_yamnet_argument,
    describe_engine,
    load_engine,
)

if TYPE_CHECKING:  # the engines import Keras, which `brogue --help` must not wait for
    from brogue.extract.engine import EncodedFrames
    from brogue.extract.yamnet.engines import HubEngine, NativeEngine


def describe(name: str, seconds: float, frames: EncodedFrames, class_names: Sequence[str]
             ) -> str:  # fmt: skip
    mean_scores = frames.scores.mean(axis=0)
    top = np.argsort(mean_scores)[::-1][:3]
    classes = ", ".join(f"{class_names[i]} {mean_scores[i]:.2f}" for i in top)
    speech = int(frames.speech.sum())
    count = len(frames.scores)
    return f"{name}: {seconds:.2f} s, {count} frames, top: {classes}; Speech in {speech}/{count}"


def report(engine: HubEngine | NativeEngine, paths: Sequence[str]) -> int:
    """Print one line per file; return how many files could not be read."""
    from brogue.inference.predict import Unreadable, encoded

    failures = 0
    for found in encoded([engine], paths):
        if isinstance(found, Unreadable):
            print(f"error: {found.reason}", file=sys.stderr)
            failures += 1
            continue
        (file,) = found
        print(describe(str(file.clip.source.path), file.clip.seconds, file.frames,
                       engine.class_names))  # fmt: skip
    return failures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE")
    add_yamnet_argument(parser)
    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    engine = load_engine(args)
    print(describe_engine(engine))
    return SOME_FAILED if report(engine, args.files) else 0


COMMANDS = {"yamnet": Command("what YAMNet hears in audio files: top classes, Speech frames",
                              add_arguments, run)}
