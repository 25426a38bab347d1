"""`brogue yamnet FILE...`: what YAMNet hears in each file.

For each file: its duration, its number of 0.96 s frames, the three AudioSet
classes with the highest mean score, and how many frames YAMNet calls Speech.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from brogue.command import Command
from brogue.errors import SOME_FAILED

from ..audio import SAMPLE_RATE, AudioError, load_audio
from ..commands import add_engine_arguments, add_yamnet_argument, describe_engine, load_engine

if TYPE_CHECKING:  # the engines import Keras, which `brogue --help` must not wait for
    from ..engine import EncodedFrames
    from .engines import HubEngine, NativeEngine

FILES_PER_CALL = 64  # files decoded and sent to the engine together


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
    failures = 0
    for start in range(0, len(paths), FILES_PER_CALL):
        readable = []
        for path in paths[start : start + FILES_PER_CALL]:
            try:
                readable.append((path, load_audio(path)))
            except AudioError as error:
                print(f"error: {error}", file=sys.stderr)
                failures += 1
        if not readable:
            continue
        results = engine.frames([waveform for _, waveform in readable])
        for (path, waveform), frames in zip(readable, results, strict=True):
            seconds = len(waveform) / SAMPLE_RATE
            print(describe(path, seconds, frames, engine.class_names))
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
