"""`python -m dev bench ge2e`: the GE2E encoder in every runtime and precision this machine has,
on the same speech-like clips, and its distance from Resemblyzer's own torch model.

Cases alternate within each round (keras/fp32, openvino/fp32 at three batch sizes,
openvino/bf16), so the machine's other load falls on all of them. Each rate is audio-seconds per
second of the whole encoder (`stream`: the numpy front end, then the network); the front end
alone is timed too. Where torch and resemblyzer are installed, it prints the largest difference
from `VoiceEncoder.forward` on the same windows and from `wav_to_mel_spectrogram` on the same
audio. The last line is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

from brogue.extract.ge2e.encoder import DEFAULT_BATCH_WINDOWS, GE2EEncoder
from brogue.extract.ge2e.features import mel_power, windows
from brogue.extract.ge2e.params import PARAMS
from brogue.extract.runtime import cpu_has_bf16
from dev.signals import speech_like

REFERENCE = "keras/fp32"


def speech_clips(count: int, mean_seconds: float, seed: int) -> list[np.ndarray]:
    """`count` speech-like clips of 0.6-1.4x `mean_seconds` (as `bench yamnet`'s)."""
    rng = np.random.default_rng(seed)
    return [speech_like(s, rng) for s in rng.uniform(0.6, 1.4, count) * mean_seconds]


def interleaved(cases: dict[str, Callable[[], object]], seconds: float, rounds: int
                ) -> dict[str, list[float]]:  # fmt: skip
    """Audio-seconds per second of each case in each round, the cases alternating in a round."""
    for action in cases.values():
        action()  # warm-up: compiles every batch shape
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(1, rounds + 1):
        for name, action in cases.items():
            start = time.perf_counter()
            action()
            rates[name].append(seconds / (time.perf_counter() - start))
        print(f"round {round_}: " + ", ".join(f"{n} {r[-1]:.0f}" for n, r in rates.items()),
              flush=True)
    return rates


def cpu_model() -> str:
    with open("/proc/cpuinfo") as cpuinfo:
        names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return f"{names[0] if names else platform.processor()} x{len(names)}"


def encoders(handle: str | None, batch_sizes: Sequence[int]) -> dict[str, GE2EEncoder]:
    found = {REFERENCE: GE2EEncoder(handle, "keras")}
    for batch in batch_sizes:
        found[f"openvino/fp32/b{batch}"] = GE2EEncoder(handle, "openvino", batch_size=batch)
    if cpu_has_bf16():
        found["openvino/bf16"] = GE2EEncoder(handle, "openvino", "bf16")
    return found


def torch_distances(encoders: dict[str, GE2EEncoder], clips: list[np.ndarray]) -> dict | None:
    """Max |ours - Resemblyzer's| of each case's embeddings, and of the mel, or None without
    torch and resemblyzer."""
    try:
        import torch
        from resemblyzer.audio import wav_to_mel_spectrogram
        from resemblyzer.voice_encoder import VoiceEncoder
    except ImportError:
        return None
    reference = VoiceEncoder("cpu", verbose=False)
    stacked = [windows(clip, PARAMS) for clip in clips]
    with torch.no_grad():
        theirs = np.concatenate([reference(torch.from_numpy(w)).numpy() for w in stacked])
    found = {name: float(np.abs(np.concatenate([f.embeddings for f in encoder.frames(clips)])
                                - theirs).max())
             for name, encoder in encoders.items()}  # fmt: skip
    padding = PARAMS.mel_window_samples // 2  # Resemblyzer's centred frames
    found["mel"] = max(float(np.abs(mel_power(np.pad(clip, padding), PARAMS)
                                    - wav_to_mel_spectrogram(clip)).max()) for clip in clips)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-ge2e", description=__doc__)
    parser.add_argument("--handle", help="a GE2E checkpoint (default: resemblyzer's own)")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=4.0, help="mean clip length")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    clips = speech_clips(args.clips, args.seconds, seed=0)
    audio_s = sum(len(clip) for clip in clips) / PARAMS.sample_rate
    print(f"CPU: {cpu_model()}; {len(clips)} clips, {audio_s:.0f} s of audio, "
          f"{sum(PARAMS.grid.frame_count(len(c)) for c in clips)} windows")
    cases = encoders(args.handle, sorted({32, DEFAULT_BATCH_WINDOWS, 128}))
    actions = {name: (lambda encoder=encoder: encoder.frames(clips))
               for name, encoder in cases.items()}  # fmt: skip
    actions["front end alone"] = lambda: [windows(clip, PARAMS) for clip in clips]
    rates = interleaved(actions, audio_s, args.rounds)
    medians = {name: round(statistics.median(values), 1) for name, values in rates.items()}
    # The median over rounds of each case's rate over keras's in the same round.
    ratios = {name: round(statistics.median(a / b for a, b in
                                            zip(values, rates[REFERENCE], strict=True)), 3)
              for name, values in rates.items() if name != REFERENCE}  # fmt: skip
    print("median audio-s/s: " + ", ".join(f"{n} {r}" for n, r in medians.items()))
    print(f"median ratio to {REFERENCE}: " + ", ".join(f"{n} {r}" for n, r in ratios.items()))
    distances = torch_distances(cases, clips)
    if distances is not None:
        print("max |Δ| from Resemblyzer: " + ", ".join(f"{n} {d:.1e}"
                                                       for n, d in distances.items()))
    print("RESULT " + json.dumps({"cpu": cpu_model(), "audio_s_per_s": medians,
                                  "ratios_to_keras": ratios, "max_abs_diff": distances}))
    return 0
