"""Issue 20: does a TensorFlow-free front end (numpy + a float32 FFT) keep YAMNet's embeddings?

For the parity clips (`tests/test_yamnet_parity.py`) and real speech (`accents-dev`), it compares
with the Hub SavedModel: the Keras front end (today's) and the host front end
(`host_frontend.HostLogMelPatches`) with each FFT on offer, every one followed by the same
OpenVINO fp32 network. The host front end gets the graph's own window and mel matrix
(`host_frontend.constants`); only the FFT changes. Prints the largest |native - hub| in
embeddings and log-mel per clip set, whether the shipped window and mel matrix equal the
Keras ones bit for bit, and the front ends' audio-seconds per second in interleaved rounds.
Ends with `RESULT {json}`.

    python -m dev.frontend_study --data ../shared/accents-dev
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.fft

from brogue.extract.yamnet import host_frontend
from brogue.extract.yamnet.features import lay_out, log_mel_rows
from dev.int8_study import load
from dev.machine import cpu_line

TOLERANCE = 1e-4


def _ffts() -> dict[str, Callable]:
    ffts = {"scipy": scipy.fft.rfft, "numpy": np.fft.rfft}
    try:
        import ducc0

        def ducc(x, axis):
            return ducc0.fft.r2c(x, axes=(axis,))

        ffts["ducc0"] = ducc
    except ImportError:
        pass
    return ffts


def split(log_mel: np.ndarray, patches: np.ndarray, lengths: np.ndarray
          ) -> list[tuple[np.ndarray, np.ndarray]]:
    counts = host_frontend.PARAMS.grid.frame_counts(lengths)
    return list(zip(np.split(log_mel, np.cumsum(log_mel_rows(counts, host_frontend.PARAMS))[:-1]),
                    np.split(patches, np.cumsum(counts)[:-1]), strict=True))


def compare(engine, hub: list, waveforms: Sequence[np.ndarray], front_end) -> dict:
    """Largest |x - hub| in embeddings and log-mel over the clips, with `front_end`'s patches
    through the engine's network; and the clip where the embeddings are furthest."""
    worst = {"embeddings": 0.0, "log_mel": 0.0, "clip": None}
    for index, waveform in enumerate(waveforms):
        log_mel, patches = front_end([waveform])[0]
        _, embeddings = engine.infer(patches)
        embedding_gap = float(np.abs(embeddings - hub[index].embeddings).max())
        worst["log_mel"] = max(worst["log_mel"],
                               float(np.abs(log_mel - hub[index].log_mel).max()))
        if embedding_gap > worst["embeddings"]:
            worst["embeddings"], worst["clip"] = embedding_gap, index
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="accents-dev folder")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import csv

    from test_yamnet_parity import CLIPS, make_clip

    from brogue.extract.audio import load_audio
    from brogue.extract.yamnet.engines import HubEngine, NativeEngine
    from brogue.extract.yamnet.frontend import build_front_end, hann_window, mel_matrix
    from brogue.extract.yamnet.weights import resolve_handle

    print(cpu_line())
    handle = resolve_handle(None)
    engine = NativeEngine(handle, "openvino", "fp32")
    hub = HubEngine(handle)
    rows = list(csv.DictReader((args.data / "manifest.csv").open()))
    sets = {"parity clips": [make_clip(name) for name in CLIPS],
            "accents-dev": [load_audio(args.data / row["path"]) for row in rows]}
    names = {"parity clips": list(CLIPS), "accents-dev": [row["path"] for row in rows]}
    hub_frames = {name: hub.frames(clips) for name, clips in sets.items()}
    window, mel = host_frontend.constants()
    results: dict = {
        "window_bit_equal": bool(np.array_equal(window, np.asarray(hann_window(400)))),
        "mel_bit_equal": bool(np.array_equal(mel, np.asarray(mel_matrix()))),
    }
    print({key: value for key, value in results.items()}, flush=True)
    keras_front_end = build_front_end()

    def keras(waveforms):
        samples, lengths = lay_out(waveforms, host_frontend.PARAMS)
        return split(*(np.asarray(out) for out in keras_front_end.predict_on_batch(
            [samples, lengths])), lengths)

    front_ends = {"keras": keras}
    for fft_name, fft in _ffts().items():
        def host(waveforms, fft=fft):
            original = host_frontend.scipy
            host_frontend.scipy = types.SimpleNamespace(fft=types.SimpleNamespace(rfft=fft))
            try:
                samples, lengths = lay_out(waveforms, host_frontend.PARAMS)
                return split(*host_frontend.HostLogMelPatches()(samples, lengths), lengths)
            finally:
                host_frontend.scipy = original
        front_ends[f"host/{fft_name}"] = host
    for front_name, front_end in front_ends.items():
        for set_name, clips in sets.items():
            worst = compare(engine, hub_frames[set_name], clips, front_end)
            worst["clip"] = names[set_name][worst["clip"]] if worst["clip"] is not None else None
            worst["parity"] = worst["embeddings"] <= TOLERANCE
            results[f"{front_name} on {set_name}"] = worst
            print(f"{front_name:12} {set_name:13} embeddings {worst['embeddings']:.2e} "
                  f"log-mel {worst['log_mel']:.2e} (worst clip {worst['clip']})", flush=True)
    # speed: the front ends alone on accents-dev in 96 s calls, interleaved
    clips = sets["accents-dev"]
    seconds = sum(len(clip) for clip in clips) / 16000
    timed = {"keras": front_ends["keras"], "host/scipy": front_ends["host/scipy"]}
    rates: dict[str, list[float]] = {name: [] for name in timed}
    for front_end in timed.values():
        front_end(clips[:16])
    for _ in range(args.rounds):
        for name, front_end in timed.items():
            start = time.perf_counter()
            for begin in range(0, len(clips), 16):
                front_end(clips[begin : begin + 16])
            rates[name].append(seconds / (time.perf_counter() - start))
    results["front_end_audio_s_per_s"] = {name: statistics.median(values)
                                          for name, values in rates.items()}
    print(f"front end alone, audio-s/s (median of {args.rounds}): "
          f"{results['front_end_audio_s_per_s']}; load: {load()}")
    print("RESULT " + json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
