"""`python -m extract.yamnet FILE...`: what YAMNet hears in each file.

For each file: its duration, its number of 0.96 s frames, the three AudioSet
classes with the highest mean score, and how many frames YAMNet calls Speech.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from ..audio import YAMNET_SAMPLE_RATE, AudioError, load_audio
from .engines import DEFAULT_BATCH_PATCHES, ENGINES, Engine, Frames, load_engine
from .params import SPEECH_CLASS
from .weights import YamnetError, resolve_handle

FILES_PER_CALL = 64  # files decoded and sent to the engine together


def describe(name: str, seconds: float, frames: Frames, class_names: Sequence[str]) -> str:
    mean_scores = frames.scores.mean(axis=0)
    top = np.argsort(mean_scores)[::-1][:3]
    classes = ", ".join(f"{class_names[i]} {mean_scores[i]:.2f}" for i in top)
    speech = int((frames.scores.argmax(axis=1) == SPEECH_CLASS).sum())
    count = len(frames.scores)
    return f"{name}: {seconds:.2f} s, {count} frames, top: {classes}; Speech in {speech}/{count}"


def report(engine: Engine, paths: Sequence[str]) -> int:
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
            seconds = len(waveform) / YAMNET_SAMPLE_RATE
            print(describe(path, seconds, frames, engine.class_names))
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extract.yamnet", description=__doc__)
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--yamnet", help="TF Hub handle or SavedModel folder "
                        "(default: $BROGUE_YAMNET, else https://tfhub.dev/google/yamnet/1)")
    parser.add_argument("--engine", choices=sorted(ENGINES), default="native")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_PATCHES,
                        help="patches per native batch")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    try:
        handle = resolve_handle(args.yamnet)
        engine = load_engine(args.engine, handle, args.batch_size)
        print(f"YAMNet {engine.handle} (weights {engine.fingerprint}, {engine.name} engine)")
        return 1 if report(engine, args.files) else 0
    except (YamnetError, ValueError) as error:
        if args.verbose:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
