"""`make bench-sweep`: what the cache saves a sweep, and sweep trials run at once.

1. One sweep trial on a cached corpus against the same trial with YAMNet recomputed first, as
   the Keras example's pipeline did for every model it tried. The corpus is espeak-ng speech in
   the OpenSLR 83 layout (`extract.synthetic`, so espeak-ng must be installed); YAMNet is the
   native engine of $BROGUE_YAMNET (else TF Hub's). Both trials are the same frame-dense fit
   (the example's head), run in this process after the extraction, so both find Keras warm.
2. The same sweep of synthetic-embedding trials run one at a time and two at a time (`--jobs`),
   the measurement behind `brogue.train.config.DEFAULT_JOBS`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from brogue.extract import pipeline
from brogue.extract.corpus import openslr83_clips
from brogue.extract.yamnet.engines import NativeEngine
from brogue.extract.yamnet.weights import resolve_handle
from brogue.train.config import TrainConfig
from brogue.train.fit import fit
from brogue.train.sweep import DEFAULT_SPACE, load_space, sweep
from dev.synthetic_cache import SyntheticCorpus, write_synthetic_cache
from dev.synthetic_corpus import write_corpus

# About 12,000 frames: trials long enough that starting the worker processes does not dominate.
JOBS_CORPUS = SyntheticCorpus(speakers=(6, 6, 12, 6), clips_per_speaker=40, clips_per_shard=256)


def cached_against_recomputed(folder: Path, config: TrainConfig, speakers: int, clips: int) -> None:
    corpus = write_corpus(folder / "corpus", speakers, clips)
    started = time.perf_counter()
    engine = NativeEngine(resolve_handle(None))
    report = pipeline.run(openslr83_clips(corpus), engine, folder / "cache", progress=False)
    extraction = time.perf_counter() - started
    seconds = {}
    for name in ("recomputed", "cached"):
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            metrics = fit(folder / "cache", folder / name, config, verbose=0)
        seconds[name] = time.perf_counter() - started
    recomputed = extraction + seconds["recomputed"]
    print(f"corpus: {report.clips} clips, {report.frames} frames, {report.seconds:.0f} s of audio")
    print(f"trial: the example's head, lr {config.learning_rate:g}, batch {config.batch_size}, "
          f"{metrics['epochs_run']} epochs")  # fmt: skip
    print(f"YAMNet recomputed first  {recomputed:7.1f} s  (YAMNet {extraction:.1f} s + trial "
          f"{seconds['recomputed']:.1f} s)")  # fmt: skip
    print(f"cached embeddings        {seconds['cached']:7.1f} s")
    print(f"recomputed / cached: {recomputed / seconds['cached']:.2f}x")


def jobs_compared(folder: Path, base: TrainConfig, trials: int) -> None:
    cache = write_synthetic_cache(folder / "jobs-cache", JOBS_CORPUS, seed=0)
    space = load_space(DEFAULT_SPACE)
    seconds = {}
    for jobs in (1, 2):
        started = time.perf_counter()
        sweep(cache, folder / f"jobs-{jobs}", base, space, trials=trials, jobs=jobs)
        seconds[jobs] = time.perf_counter() - started
    print(f"sweep of {trials} trials: one at a time {seconds[1]:.1f} s, two at a time "
          f"{seconds[2]:.1f} s: {seconds[1] / seconds[2]:.2f}x")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per trial (default 10)")
    parser.add_argument("--speakers", type=int, default=3, help="espeak speakers per accent")
    parser.add_argument("--clips", type=int, default=8, help="clips per speaker")
    parser.add_argument("--trials", type=int, default=4, help="trials per sweep in part 2")
    args = parser.parse_args(argv)
    base = TrainConfig(epochs=args.epochs, patience=args.epochs, tensorboard=False)
    with tempfile.TemporaryDirectory() as folder:
        cached_against_recomputed(Path(folder), base, args.speakers, args.clips)
        jobs_compared(Path(folder), base, args.trials)
    return 0
