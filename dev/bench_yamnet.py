"""`make bench-yamnet`: hub (per clip) against the native engine in every runtime and precision
this machine has, on the same clips.

All engines see the same speech-like clips (about 6 s each, as in the corpus) in rounds that
alternate hub, keras/fp32, openvino/fp32, openvino/bf16, hub, ..., so the machine's other load
falls on all of them. It prints audio-seconds per second per engine and round, the median of
the per-round ratios to hub, how far each engine's outputs are from hub's (fp32) or from
fp32's (bf16), and, for each native engine, its front end alone against its network alone
(the front end should run at >= 3x the network's audio-seconds per second). The last line is
`RESULT {json}` with `ratios` {"runtime/precision": median ratio to hub}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np

from brogue.errors import BrogueError
from brogue.extract import runtime
from brogue.extract.audio import SAMPLE_RATE
from brogue.extract.engine import EncodedFrames, Encoder
from brogue.extract.yamnet.engines import (
    BATCHES_PER_NETWORK_CALL,
    DEFAULT_BATCH_PATCHES,
    HubEngine,
    NativeEngine,
    front_end_groups,
)
from brogue.extract.yamnet.params import DEFAULT_HANDLE
from brogue.extract.yamnet.weights import resolve_handle
from dev.machine import bf16_runs, cpu_line
from dev.signals import speech_like


def speech_clips(count: int, mean_seconds: float, seed: int) -> list[np.ndarray]:
    """`count` speech-like clips of 0.6-1.4x `mean_seconds`."""
    rng = np.random.default_rng(seed)
    return [speech_like(s, rng) for s in rng.uniform(0.6, 1.4, count) * mean_seconds]


def variants() -> list[tuple[str, str]]:
    """Every (runtime, precision) this machine can run, fp32 first; no bf16 under an
    instruction-set cap that leaves it to reference code (`machine.bf16_runs`)."""
    found = [("keras", "fp32"), ("openvino", "fp32")]
    return found + ([("openvino", "bf16")] if runtime.cpu_has_bf16() and bf16_runs() else [])


def native_engines(handle: str, batch_size: int) -> dict[str, NativeEngine]:
    return {f"{name}/{precision}": NativeEngine(handle, name, precision, batch_size)
            for name, precision in variants()}


def rate(action: Callable[[], object], seconds: float) -> float:
    start = time.perf_counter()
    action()
    return seconds / (time.perf_counter() - start)


def interleaved(cases: dict[str, Callable[[], object]], seconds: float, rounds: int,
                log: Callable[[int, dict[str, float]], None] | None = None
                ) -> dict[str, list[float]]:
    """Audio-seconds per second of each case in each round, the cases alternating in a round."""
    for action in cases.values():
        action()  # warm-up: compiles every batch shape
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(1, rounds + 1):
        for name, action in cases.items():
            rates[name].append(rate(action, seconds))
        if log:
            log(round_, {name: values[-1] for name, values in rates.items()})
    return rates


def median_ratios(rates: dict[str, list[float]], reference: str) -> dict[str, float]:
    """Median over rounds of each case's rate over `reference`'s rate in the same round."""
    return {
        name: statistics.median(a / b for a, b in zip(values, rates[reference], strict=True))
        for name, values in rates.items() if name != reference
    }


def distance(reference: list[EncodedFrames], other: list[EncodedFrames]) -> str:
    if [len(f.scores) for f in reference] != [len(f.scores) for f in other]:
        return "FRAME COUNTS DIFFER"
    a = np.concatenate([f.embeddings for f in reference])
    b = np.concatenate([f.embeddings for f in other])
    scores = max(np.abs(r.scores - o.scores).max() for r, o in zip(reference, other, strict=True))
    cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)
    top = np.mean(np.concatenate([(r.scores.argmax(1) == o.scores.argmax(1))
                                  for r, o in zip(reference, other, strict=True)]))
    return (f"max |Δ| embeddings {np.abs(a - b).max():.1e}, scores {scores:.1e}; cosine mean "
            f"{cosine.mean():.5f}, min {cosine.min():.5f}; top class same on {top:.1%}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-yamnet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yamnet", help="TF Hub handle or SavedModel folder "
                        f"(default: $BROGUE_YAMNET, else {DEFAULT_HANDLE})")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=6.3, help="mean clip length")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_PATCHES,
                        help="patches per native batch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(cpu_line(), flush=True)
    try:
        handle = resolve_handle(args.yamnet)
        engines: dict[str, Encoder] = {"hub": HubEngine(handle),
                                      **native_engines(handle, args.batch_size)}
    except (BrogueError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    clips = speech_clips(args.clips, args.seconds, args.seed)
    seconds = sum(len(clip) for clip in clips) / SAMPLE_RATE
    print(f"YAMNet {handle} (weights {engines['hub'].fingerprint}); {len(clips)} speech-like "
          f"clips, {seconds:.0f} s of audio; native batch {args.batch_size} patches; Keras "
          f"backend {keras.backend.backend()}; {os.cpu_count()} CPUs; {args.rounds} rounds")

    def log(round_: int, rates: dict[str, float]) -> None:
        line = ", ".join(f"{name} {value:6.0f}" for name, value in rates.items())
        print(f"round {round_}: {line} audio-s/s", flush=True)

    outputs = {name: engine.frames(clips) for name, engine in engines.items()}
    cases = {name: (lambda engine=engine: engine.frames(clips)) for name, engine in engines.items()}
    rates = interleaved(cases, seconds, args.rounds, log)
    ratios = median_ratios(rates, "hub")
    print("engine          audio-s/s  x hub   outputs")
    for name, values in rates.items():
        reference = "fp32" if name.endswith("bf16") else "hub"
        against = outputs["openvino/fp32" if reference == "fp32" else "hub"]
        difference = "" if name == "hub" else f"vs {reference}: {distance(against, outputs[name])}"
        ratio = f"{ratios[name]:5.2f}" if name in ratios else "    -"
        print(f"{name:14s} {statistics.median(values):10.0f}  {ratio}   {difference}")

    front_end = split_costs(engines, clips, seconds, args.rounds)
    result = {
        "bench": "yamnet", "clips": len(clips), "audio_seconds": round(seconds),
        "audio_s_per_s": {name: round(statistics.median(v)) for name, v in rates.items()},
        "ratios": {name: round(value, 3) for name, value in ratios.items()},
        "front_end_over_network": front_end,
    }
    print("RESULT " + json.dumps(result))
    return 0


def split_costs(engines: dict[str, Encoder], clips: list[np.ndarray], seconds: float,
                rounds: int) -> dict[str, float]:
    """The one front end alone against each network alone, interleaved; prints both."""
    natives = {name: engine for name, engine in engines.items() if name != "hub"}
    any_engine = next(iter(natives.values()))
    groups = [[clip for _, clip in group] for group in front_end_groups(enumerate(clips))]
    patches = np.concatenate([patches for group in groups
                              for _, patches in any_engine.log_mel_patches(group)])
    cases: dict[str, Callable[[], object]] = {
        "front end": lambda: [any_engine.log_mel_patches(group) for group in groups]}
    for name, engine in natives.items():
        call = engine.batch_size * BATCHES_PER_NETWORK_CALL  # as `stream` calls it
        cases[f"{name} network"] = lambda engine=engine, call=call: [
            engine.infer(patches[start : start + call]) for start in range(0, len(patches), call)]
    rates = {name: statistics.median(v) for name, v in
             interleaved(cases, seconds, rounds).items()}
    print(f"front end alone: {rates['front end']:.0f} audio-s/s (target >= 3x each network)")
    over = {}
    for name in natives:
        over[name] = round(rates["front end"] / rates[f"{name} network"], 2)
        print(f"  {name} network alone {rates[f'{name} network']:6.0f} audio-s/s: "
              f"front end / network {over[name]:.2f}x")
    return over
