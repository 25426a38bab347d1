"""`make bench-whisper`: the whisper: encoders' whole extraction stage on accents-dev, beside
CTranslate2's own `encode` on the same clips.

For each model: brogue's extraction stage (decode, log-mel, the OpenVINO encoder cut after the
kept layer, Silero, pooling, the shard writer) at the default layer in fp32 and in bf16 (where the
CPU has it) and at the last layer; then the networks alone on the same log-mels: brogue's at the
default and the last layer, and CTranslate2's `encode` (always the last layer, float32, one
thread per core) on the clip's own log-mel and on faster-whisper's 30 s input (a subset: 30 s
costs 10x). Every figure is audio-seconds per second, the median of interleaved rounds. Goals on
2 cores: tiny.en >= 50, base >= 20 for the stage. The last line is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from brogue.extract.audio import load_audio
from brogue.extract.corpus import resolve_corpus
from brogue.extract.runtime import cpu_has_bf16
from brogue.extract.whisper import checkpoint
from brogue.extract.whisper.encoder import WhisperEncoder
from brogue.extract.whisper.features import log_mel
from brogue.extract.whisper.network import Network
from brogue.extract.whisper.spec import default_layer
from dev.bench_encoders import ACCENTS_DEV, extract
from dev.machine import cpu_line

GOALS = {"tiny.en": 50.0, "base": 20.0}
WHISPER_SAMPLES = 30 * 16000


def _rate(run: Callable[[list[np.ndarray]], object], mels: list[np.ndarray], seconds: float
          ) -> float:
    started = time.perf_counter()
    run(mels)
    return seconds / (time.perf_counter() - started)


def _ct2_folder(model: str, scratch: Path) -> Path:
    """A folder CTranslate2 loads: the bundled model.bin's parts joined (it reads one file),
    beside the last part's config and vocabulary."""
    parts = checkpoint.bundled_parts(model)
    if len(parts) == 1:
        return parts[0].parent
    with (scratch / "model.bin").open("wb") as joined:
        for part in parts:
            joined.write(part.read_bytes())
    for other in parts[-1].parent.iterdir():
        if other.suffix == ".json":
            shutil.copy(other, scratch / other.name)
    return scratch


class CT2Encode:
    """CTranslate2's Whisper encoder, float32, one thread per core, one clip per call."""

    def __init__(self, folder: Path) -> None:
        import ctranslate2

        self._ctranslate2 = ctranslate2
        self._model = ctranslate2.models.Whisper(str(folder), device="cpu",
                                                 compute_type="float32",
                                                 intra_threads=os.cpu_count())

    def __call__(self, mels: list[np.ndarray]) -> None:
        for mel in mels:
            self._model.encode(self._ctranslate2.StorageView.from_array(mel[None]), to_cpu=True)


def bench_model(model: str, corpus: str, waveforms: list[np.ndarray], padded_clips: int,
                rounds: int) -> dict:
    """Every rate of `model`, per round, and their medians."""
    loaded = checkpoint.load(model)
    depth = len(loaded.weights.layers)
    layer = default_layer(depth)
    precisions = ["fp32", "bf16"] if cpu_has_bf16() else ["fp32"]
    stages = {f"stage @{layer} {precision}": WhisperEncoder(f"whisper:{model}@{layer}",
                                                           precision=precision)
              for precision in precisions}  # fmt: skip
    stages[f"stage @{depth} fp32"] = WhisperEncoder(f"whisper:{model}@{depth}")
    front = next(iter(stages.values()))
    mels = [front.input(waveform) for waveform in waveforms]
    seconds = sum(len(waveform) for waveform in waveforms) / 16000
    few = waveforms[:padded_clips]
    padded = [log_mel(np.pad(waveform, (0, WHISPER_SAMPLES - len(waveform))), front.front_end)
              for waveform in few]
    few_seconds = sum(len(waveform) for waveform in few) / 16000
    runs = {f"network @{kept} fp32": (Network(loaded.weights, kept, "fp32"), mels, seconds)
            for kept in (layer, depth)}
    ct2 = CT2Encode(_ct2_folder(model, Path(tempfile.mkdtemp())))
    last = f"ctranslate2 @{depth} float32, clip alone"
    runs[last] = (ct2, mels, seconds)
    runs[f"ctranslate2 @{depth} float32, 30 s input"] = (ct2, padded, few_seconds)
    rates: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(rounds):
            for what, encoder in stages.items():
                out = Path(scratch) / f"{what}-{round_}".replace(" ", "-")
                rates.setdefault(what, []).append(extract(encoder, corpus, out)["audio_s_per_s"])
            for what, (run, inputs, audio) in runs.items():
                rates.setdefault(what, []).append(_rate(run, inputs, audio))
            print(f"{model} round {round_ + 1}: {cpu_line()}", flush=True)
    medians = {what: statistics.median(found) for what, found in rates.items()}
    print(f"\n{model} ({depth} layers, default @{layer}; {len(waveforms)} clips, "
          f"{seconds:.0f} audio-s; goal >= {GOALS.get(model, 0):.0f} for the stage)")
    for what, median in medians.items():
        print(f"  {what:40} {median:8.1f} audio-s/s  {median / medians[last]:5.2f}x "
              "ctranslate2 (clip alone)")
    return {"layers": depth, "default_layer": layer, "audio_s_per_s": medians, "rounds": rates,
            "goal": GOALS.get(model)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-whisper", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ACCENTS_DEV))
    parser.add_argument("--models", default="tiny.en,base")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--padded-clips", type=int, default=24,
                        help="clips CTranslate2 hears padded to 30 s (default 24)")
    args = parser.parse_args(argv)
    print(cpu_line(), flush=True)
    sources = resolve_corpus(args.corpus, Path(tempfile.gettempdir()), None)
    waveforms = [load_audio(source.path) for source in sources]
    results = {model: bench_model(model, args.corpus, waveforms, args.padded_clips, args.rounds)
               for model in args.models.split(",")}
    print(cpu_line())
    print("RESULT " + json.dumps({"corpus": args.corpus, "clips": len(waveforms),
                                  "models": results}))
    return 0
