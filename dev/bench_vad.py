"""`make bench-vad`: speech rules for encoders without sound-event scores, against YAMNet's.

On a corpus of real speech (a manifest; default ../shared/accents-dev) and on non-speech built
here (silence, noises, tones), each rule gives a speech mask on YAMNet's grid (0.96 s frames
every 0.48 s): Silero VAD on OpenVINO at several coverage shares, webrtcvad (if installed) at
its four modes, and an energy gate. It prints each rule's agreement with YAMNet's own rule (top
class Speech) on the speech corpus, the share of frames each calls speech there and in each
non-speech signal, and each rule's audio-seconds per second, timed side by side in one run.
The last line is `RESULT {json}`, with `ratios` {rule: audio-s/s over YAMNet's}.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from brogue.extract import vad as speech_rule
from brogue.extract.audio import SAMPLE_RATE, load_audio
from brogue.extract.yamnet.engines import load_engine
from brogue.extract.yamnet.params import PARAMS
from brogue.extract.yamnet.weights import resolve_handle
from dev.signals import speech_like

SHARES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 0.9)
WEBRTC_FRAME = 480  # 30 ms, one of webrtcvad's three frame lengths
ENERGY_DBFS = -45.0  # an energy gate's level: quieter 32 ms chunks are not speech


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def non_speech(seconds: float, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    count = round(seconds * SAMPLE_RATE)
    t = np.arange(count) / SAMPLE_RATE
    white = rng.standard_normal(count)
    spectrum = np.fft.rfft(white) / np.sqrt(np.maximum(np.fft.rfftfreq(count), 1e-3))
    pink = np.fft.irfft(spectrum, count)
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) / 3
    # A melody: a 0.25 s note at a time, with harmonics, as a simple instrument plays it.
    notes = 220 * 2 ** (rng.integers(0, 12, int(seconds * 4) + 1) / 12)
    f0 = notes[(t * 4).astype(int)]
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    melody = sum(np.sin(k * phase) / k for k in range(1, 6)) * (1 - (t * 4) % 1)
    signals = {
        "silence": np.zeros(count),
        "white -40 dBFS": white * 10 ** (-40 / 20),
        "white -10 dBFS": white * 10 ** (-10 / 20),
        "pink -20 dBFS": pink / np.abs(pink).max() * 10 ** (-20 / 20),
        "tone 440 Hz": 0.3 * np.sin(2 * np.pi * 440 * t),
        "chord": 0.3 * chord,
        "melody": 0.3 * melody / np.abs(melody).max(),
    }
    return {name: signal.astype(np.float32) for name, signal in signals.items()}


def webrtc_masks(mode: int) -> Callable[[np.ndarray, int], np.ndarray] | None:
    try:
        import webrtcvad
    except ImportError:
        return None
    vad = webrtcvad.Vad(mode)

    def masks(waveform: np.ndarray, count: int) -> np.ndarray:
        pcm = (np.clip(waveform, -1, 1) * 32767).astype(np.int16)
        frames = len(pcm) // WEBRTC_FRAME
        active = [vad.is_speech(pcm[i * WEBRTC_FRAME:(i + 1) * WEBRTC_FRAME].tobytes(),
                                SAMPLE_RATE) for i in range(frames)]
        share = speech_rule.coverage(np.array(active, float), WEBRTC_FRAME / SAMPLE_RATE,
                                PARAMS.patch_window_seconds, PARAMS.patch_hop_seconds, count)
        return share > speech_rule.MIN_SPEECH_FRACTION
    return masks


def energy_mask(waveform: np.ndarray, count: int) -> np.ndarray:
    chunks = -(-len(waveform) // speech_rule.CHUNK_SAMPLES)
    padded = np.zeros(chunks * speech_rule.CHUNK_SAMPLES, np.float32)
    padded[: len(waveform)] = waveform
    power = (padded.reshape(chunks, -1) ** 2).mean(axis=1)
    active = 10 * np.log10(power + 1e-12) > ENERGY_DBFS
    share = speech_rule.coverage(active, speech_rule.CHUNK_S, PARAMS.patch_window_seconds,
                            PARAMS.patch_hop_seconds, count)
    return share > speech_rule.MIN_SPEECH_FRACTION


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-vad", description=__doc__)
    parser.add_argument("--manifest", type=Path,
                        default=Path("../shared/accents-dev/manifest.csv"))
    parser.add_argument("--yamnet", help="handle (default: $BROGUE_YAMNET, else TF Hub)")
    parser.add_argument("--seconds", type=float, default=20.0, help="of each non-speech signal")
    args = parser.parse_args(argv)

    with args.manifest.open() as file:
        paths = [args.manifest.parent / row["path"] for row in csv.DictReader(file)]
    clips = [load_audio(path) for path in paths]
    others = non_speech(args.seconds, seed=0)
    babble = [speech_like(6.0, np.random.default_rng(seed)) for seed in range(16)]
    sets = {"accents-dev": clips, "speech_like": babble,
            **{name: [signal] for name, signal in others.items()}}
    total_s = {name: sum(len(w) for w in waves) / SAMPLE_RATE
               for name, waves in sets.items()}

    engine = load_engine("native", resolve_handle(args.yamnet), "openvino", "fp32")
    vad = speech_rule.SileroVad()
    window, hop = PARAMS.patch_window_seconds, PARAMS.patch_hop_seconds

    seconds: dict[str, float] = {}

    def timed(name: str, action: Callable[[], object]):
        start = time.perf_counter()
        value = action()
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
        return value

    engine.frames(clips[:4])  # warm both before timing
    vad.probabilities(clips[0])
    yamnet, probs = {}, {}
    for name, waves in sets.items():
        yamnet[name] = [f.speech
                        for f in timed("yamnet", lambda w=waves: engine.frames(w))]
        probs[name] = timed("silero", lambda w=waves: [vad.probabilities(x) for x in w])

    rules: dict[str, Callable[[str], list[np.ndarray]]] = {}
    for share in SHARES:
        def silero_rule(name, share=share):
            pairs = zip(probs[name], yamnet[name], strict=True)
            return [speech_rule.coverage(p > speech_rule.SPEECH_PROBABILITY, speech_rule.CHUNK_S,
                                         window, hop, len(y)) > share for p, y in pairs]
        rules[f"silero>{share:.2f}"] = silero_rule
    for mode in range(4):
        webrtc = webrtc_masks(mode)
        if webrtc is not None:
            rules[f"webrtc{mode}"] = lambda name, m=webrtc, mode=mode: timed(
                f"webrtc{mode}",
                lambda: [m(w, len(y)) for w, y in zip(sets[name], yamnet[name], strict=True)])
    rules["energy"] = lambda name: timed("energy", lambda: [
        energy_mask(w, len(y)) for w, y in zip(sets[name], yamnet[name], strict=True)])
    rules["yamnet"] = lambda name: yamnet[name]

    masks = {rule: {name: masks_of(name) for name in sets} for rule, masks_of in rules.items()}
    reference = np.concatenate(yamnet["accents-dev"])
    table: dict[str, dict[str, float]] = {}
    for rule, by_set in masks.items():
        row = {name: float(np.concatenate(by_set[name]).mean()) for name in sets}
        mask = np.concatenate(by_set["accents-dev"])
        row["agree"] = float((mask == reference).mean())
        row["iou"] = float((mask & reference).sum() / max(1, (mask | reference).sum()))
        table[rule] = row
    audio_s = sum(total_s.values())
    rates = {name: audio_s / spent for name, spent in seconds.items()}
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); {len(clips)} clips, "
          f"{total_s['accents-dev']:.0f} s of speech; {len(others)} non-speech signals of "
          f"{args.seconds:.0f} s; 16 speech_like clips of 6 s")
    names = list(sets)
    print("share of frames called speech (YAMNet grid); agree: same decision as YAMNet on "
          "accents-dev; IoU: speech frames both call speech / either calls speech")
    print(f"{'rule':<12}" + "".join(f"{n[:14]:>15}" for n in names) + f"{'agree':>8}{'IoU':>7}")
    for rule, row in table.items():
        print(f"{rule:<12}" + "".join(f"{row[n]:>15.3f}" for n in names)
              + f"{row['agree']:>8.3f}{row['iou']:>7.3f}")
    print("audio-s/s: " + ", ".join(f"{k} {v:,.0f}" for k, v in rates.items()))
    ratios = {name: rate / rates["yamnet"] for name, rate in rates.items()}
    print("RESULT " + json.dumps({"cpu": cpu_model(), "table": table, "audio_s_per_s": rates,
                                  "ratios": ratios}))
    return 0
