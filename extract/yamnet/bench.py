"""`python -m extract.yamnet.bench`: native (batched) vs hub (per clip) YAMNet, same clips.

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

from ..audio import YAMNET_SAMPLE_RATE
from .engines import DEFAULT_BATCH_PATCHES, Engine, Frames, HubEngine, NativeEngine
from .weights import YamnetError, resolve_handle

# First three formants (Hz) of five English vowels (Peterson & Barney's men's means), and
# bandwidths that widen with the formant as in natural speech.
VOWEL_FORMANTS = (
    (730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410),
)
FRICATIVE_FORMANTS = (2500, 4500, 6000)  # a hiss like /s/ or /sh/
FORMANT_BANDWIDTHS = (90.0, 110.0, 170.0)
INTONATION_STEP_S = 0.25  # seconds between pitch targets


def speech_like(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A 16 kHz waveform with speech's structure: voiced sounds, hisses and pauses.

    A glottal pulse train, whose pitch moves between random targets every 0.25 s as
    intonation does, is cut into 0.08-0.22 s segments. Each one goes through its own vowel's
    formants (or is a hiss, or silence) under a raised-cosine envelope, so the level rises
    and falls several times a second. The stand-in YAMNet hears Speech in every one of 64
    such 6 s clips and in 83% of their frames; without the intonation, in 46 clips and 52%.
    """
    count = round(seconds * YAMNET_SAMPLE_RATE)
    time_s = np.arange(count) / YAMNET_SAMPLE_RATE
    knots = np.arange(0.0, seconds + INTONATION_STEP_S, INTONATION_STEP_S)
    intonation = np.exp(rng.normal(0.0, 0.3, len(knots)))
    f0 = rng.uniform(90, 220) * np.interp(time_s, knots, intonation)
    # One impulse at the start of every glottal cycle.
    pulses = np.diff(np.floor(np.cumsum(f0) / YAMNET_SAMPLE_RATE), prepend=0.0)
    waveform = np.zeros(count)
    start = 0
    while start < count:
        end = min(count, start + int(rng.uniform(0.08, 0.22) * YAMNET_SAMPLE_RATE))
        waveform[start:end] = _segment(pulses[start:end], rng)
        start = end
    waveform += rng.normal(0, 1e-3, count)  # a quiet room, so pauses are not digital silence
    return (waveform * rng.uniform(0.3, 0.9) / np.abs(waveform).max()).astype(np.float32)


def _segment(pulses: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kind = rng.choice(["vowel", "fricative", "pause"], p=[0.7, 0.15, 0.15])
    if kind == "pause":
        return np.zeros(len(pulses))
    if kind == "vowel":
        source, formants = pulses, VOWEL_FORMANTS[rng.integers(len(VOWEL_FORMANTS))]
    else:
        source, formants = rng.normal(0, 0.3, len(pulses)), FRICATIVE_FORMANTS
    hertz = np.fft.rfftfreq(len(source), 1 / YAMNET_SAMPLE_RATE)
    gain = sum(
        np.exp(-0.5 * ((hertz - centre) / width) ** 2) / (rank + 1)
        for rank, (centre, width) in enumerate(zip(formants, FORMANT_BANDWIDTHS, strict=True))
    )
    return np.fft.irfft(np.fft.rfft(source) * gain, len(source)) * np.hanning(len(source))


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
    parser = argparse.ArgumentParser(prog="python -m extract.yamnet.bench", description=__doc__)
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


if __name__ == "__main__":
    sys.exit(main())
