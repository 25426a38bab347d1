"""`brogue bench yamnet`: native (batched) vs hub (per clip) YAMNet, same clips.

Both engines see the same speech-like clips (about 6 s each, as in the corpus) in rounds
that alternate hub, native, hub, native, ..., so the machine's other load falls on both.
It prints audio-seconds per second per engine and round, the median of the per-round
ratios, and how far apart the two engines' outputs are on those clips.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence

import keras
import numpy as np

from brogue.dev.signals import speech_like
from brogue.extract.audio import YAMNET_SAMPLE_RATE
from brogue.extract.yamnet.engines import (
    DEFAULT_BATCH_PATCHES,
    Engine,
    Frames,
    HubEngine,
    NativeEngine,
)
from brogue.extract.yamnet.weights import YamnetError, resolve_handle


def speech_clips(count: int, mean_seconds: float, seed: int) -> list[np.ndarray]:
    """`count` speech-like clips of 0.6-1.4x `mean_seconds`."""
    rng = np.random.default_rng(seed)
    return [speech_like(s, rng) for s in rng.uniform(0.6, 1.4, count) * mean_seconds]


def throughput(engine: Engine, clips: Sequence[np.ndarray]) -> tuple[float, list[Frames]]:
    """(audio-seconds per second, frames) of one call on all clips."""
    start = time.perf_counter()
    frames = engine.frames(clips)
    elapsed = time.perf_counter() - start
    return sum(len(clip) for clip in clips) / YAMNET_SAMPLE_RATE / elapsed, frames


def parity(hub: list[Frames], native: list[Frames]) -> str:
    if [len(f.scores) for f in hub] != [len(f.scores) for f in native]:
        return "parity: FRAME COUNTS DIFFER"
    pairs = list(zip(hub, native, strict=True))
    embeddings = max(np.abs(h.embeddings - n.embeddings).max() for h, n in pairs)
    scores = max(np.abs(h.scores - n.scores).max() for h, n in pairs)
    frames = sum(len(f.scores) for f in hub)
    return (f"parity: max |Δ| embeddings {embeddings:.1e}, scores {scores:.1e} "
            f"over {frames} frames (frame counts equal)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="brogue bench yamnet", description=__doc__)
    parser.add_argument("--yamnet", help="TF Hub handle or SavedModel folder "
                        "(default: $BROGUE_YAMNET, else https://tfhub.dev/google/yamnet/1)")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=6.3, help="mean clip length")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_PATCHES,
                        help="patches per native batch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        handle = resolve_handle(args.yamnet)
        hub, native = HubEngine(handle), NativeEngine(handle, batch_size=args.batch_size)
    except (YamnetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    clips = speech_clips(args.clips, args.seconds, args.seed)
    seconds = sum(len(clip) for clip in clips) / YAMNET_SAMPLE_RATE
    print(f"YAMNet {handle} (weights {native.fingerprint}); {len(clips)} speech-like clips, "
          f"{seconds:.0f} s of audio; native batch {native.batch_size} patches; "
          f"Keras backend {keras.backend.backend()}; {os.cpu_count()} CPUs")
    # Warm-up: builds the hub graph's and the native batch shapes' compiled functions.
    _, hub_frames = throughput(hub, clips)
    _, native_frames = throughput(native, clips)
    rates: dict[str, list[float]] = {"hub": [], "native": []}
    for round_ in range(1, args.rounds + 1):
        rates["hub"].append(throughput(hub, clips)[0])
        rates["native"].append(throughput(native, clips)[0])
        print(f"round {round_}: hub {rates['hub'][-1]:6.0f} audio-s/s, "
              f"native {rates['native'][-1]:6.0f} audio-s/s, "
              f"ratio {rates['native'][-1] / rates['hub'][-1]:.2f}", flush=True)
    ratios = [n / h for h, n in zip(rates["hub"], rates["native"], strict=True)]
    print(f"hub    (per clip) median {statistics.median(rates['hub']):6.0f} audio-s/s")
    print(f"native (batched)  median {statistics.median(rates['native']):6.0f} audio-s/s")
    print(f"native / hub: median per-round ratio {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}; target >= 2)")
    print(parity(hub_frames, native_frames))
    return 0
