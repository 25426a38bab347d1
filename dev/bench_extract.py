"""`brogue bench extract`: the whole extraction stage, hub vs native, in one run.

On one synthetic espeak-ng corpus (OpenSLR 83 layout, 48 kHz) it times three cases,
interleaved over rounds so that the machine's other load falls on all of them:
  1. hub:     the stage (decode, resample, YAMNet, shard writes) with TF Hub's model
              called once per clip, as the Keras example does;
  2. native:  the same stage with brogue's defaults (batched native engine);
  3. compute: the native engine's YAMNet compute alone (log-mel front end and network,
              as the Hub model computes them) on waveforms already in memory.
It prints audio-seconds per second for each and the ratios the issue sets targets
for: native / hub (>= 2) and native stage time / compute time (<= 1.3). Then a memory
line: the peak RSS of `brogue extract`, all processes together, on one long recording
(--long-hours, default 3; target <= 1 GB).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from brogue.dev.synthetic_corpus import write_corpus
from brogue.extract import pipeline
from brogue.extract.audio import load_audio
from brogue.extract.corpus import openslr83_clips
from brogue.extract.decode import DEFAULT_WORKERS
from brogue.extract.yamnet import features


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="brogue bench extract", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yamnet", help="handle (default: $BROGUE_YAMNET, else TF Hub)")
    parser.add_argument("--parts", type=int, default=3,
                        help="corpus copies with other voices' pitch and rate (192 clips each)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--long-hours", type=float, default=3.0,
                        help="length of the recording for the memory line; 0 skips it")
    args = parser.parse_args(argv)
    # Imported here, not at the top: spawned decode workers re-import this module.
    from brogue.extract.yamnet.engines import HubEngine, NativeEngine
    from brogue.extract.yamnet.weights import resolve_handle

    handle = resolve_handle(args.yamnet)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sources = [
            source
            for part in range(args.parts)
            for source in openslr83_clips(write_corpus(root / f"corpus{part}", 6, 8, seed=part))
        ]
        native, hub = NativeEngine(handle), HubEngine(handle)
        waveforms = [load_audio(source.path) for source in sources]
        native.frames(waveforms)  # compile and warm up every batch shape once
        seconds = sum(len(waveform) for waveform in waveforms) / 16000
        patches = sum(features.num_patches(len(waveform), native.params) for waveform in waveforms)

        def stage(engine, name: str, round_: int) -> Callable[[], object]:
            return lambda: pipeline.run(sources, engine, root / f"{name}-{round_}",
                                        workers=args.workers, progress=False)

        times: dict[str, list[float]] = {"hub": [], "native": [], "compute": []}
        for round_ in range(args.rounds):
            times["hub"].append(timed(stage(hub, "hub", round_)))
            times["native"].append(timed(stage(native, "native", round_)))
            times["compute"].append(timed(lambda: native.frames(waveforms)))

    print(f"{len(sources)} clips, {seconds:.0f} s of audio ({seconds / len(sources):.1f} s mean), "
          f"{patches} patches; native batch {native.batch_size} patches, "
          f"{args.workers} decode workers; {args.rounds} interleaved rounds, medians")
    median = {case: statistics.median(values) for case, values in times.items()}
    for case, value in median.items():
        print(f"  {case:8s} {seconds / value:8.0f} audio-s/s   ({value:.2f} s)")
    print(f"native stage / hub stage speed:       {median['hub'] / median['native']:.2f}x "
          "(target >= 2)")
    print(f"native stage time / compute-only time: {median['native'] / median['compute']:.2f} "
          "(target <= 1.3)")
    if args.long_hours:
        from brogue.dev.memory import extraction_peak

        print(extraction_peak(args.long_hours, handle, args.workers))
    return 0
