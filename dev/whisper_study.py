"""`python -m dev bench whisper-study`: Whisper's window and default layer, chosen on accents-dev.

For each model and layer it extracts the corpus twice, hearing each clip alone (brogue's way:
the context cut to the clip, the positional table cut with it) and padded to 30 s (Whisper's
own input), and scores each cache as `make bench-encoders` does (nested speaker folds, pooled
clip and speaker balanced accuracy with 95% speaker-bootstrap intervals; clip-linear, the
family with no epochs to tune). The whole extraction stage's audio-seconds per second comes
with each row. Padding costs the most on the deepest layers, so `--padded-layers` limits it.
The last line is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from brogue.extract.whisper.encoder import WhisperEncoder
from brogue.extract.whisper.features import log_mel
from dev.bench_encoders import ACCENTS_DEV, extract, score
from dev.machine import cpu_line

FAMILY = "clip-linear"
WHISPER_SAMPLES = 30 * 16000


class PaddedTo30s(WhisperEncoder):
    """Whisper's own input: every clip padded with zeros to 30 s, all 1500 positions heard."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.params = {**self.params, "context": "30s"}

    def input(self, waveform: np.ndarray) -> np.ndarray:
        return log_mel(np.pad(waveform, (0, WHISPER_SAMPLES - len(waveform))), self.front_end)


def _layers(text: str) -> dict[str, list[int]]:
    """"tiny.en:0-4,base:0-6" -> {"tiny.en": [0..4], "base": [0..6]}."""
    found = {}
    for item in text.split(","):
        model, _, span = item.partition(":")
        first, _, last = span.partition("-")
        found[model] = list(range(int(first), int(last or first) + 1))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev bench whisper-study", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ACCENTS_DEV))
    parser.add_argument("--layers", default="tiny.en:0-4,base:0-6",
                        help="MODEL:FIRST-LAST,... heard alone (default: tiny.en:0-4,base:0-6)")
    parser.add_argument("--padded-layers", default="tiny.en:0-4,base:3",
                        help="MODEL:FIRST-LAST,... also padded to 30 s (default: "
                        "tiny.en:0-4,base:3)")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    print(cpu_line(), flush=True)
    plan = [(model, layer, "clip") for model, layers in _layers(args.layers).items()
            for layer in layers]
    plan += [(model, layer, "30s") for model, layers in _layers(args.padded_layers).items()
             for layer in layers]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for model, layer, window in plan:
            name = f"whisper:{model}@{layer}"
            encoder = WhisperEncoder(name) if window == "clip" else PaddedTo30s(name)
            cache = Path(folder) / f"{model}-{layer}-{window}" / "cache"
            row = {**extract(encoder, args.corpus, cache), "window": window, "layer": layer,
                   "model": model, "scores": score(cache, cache.parent / FAMILY, FAMILY,
                                                   args.folds)}  # fmt: skip
            rows.append(row)
            clip, speaker = row["scores"]["clip"], row["scores"]["speaker"]
            print(f"{name:20} {window:4} {row['audio_s_per_s']:7.1f} audio-s/s  clip BA "
                  f"{clip['balanced_accuracy']:.3f} {clip['interval']}  speaker BA "
                  f"{speaker['balanced_accuracy']:.3f} {speaker['interval']}  ({cpu_line()})",
                  flush=True)
    print("RESULT " + json.dumps({"corpus": args.corpus, "folds": args.folds, "family": FAMILY,
                                  "rows": rows}))
    return 0
