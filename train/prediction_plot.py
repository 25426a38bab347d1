"""The Keras example's inference figure, with its three time axes aligned in seconds.

Top to bottom: the waveform, the log-mel spectrogram YAMNet classified (the front end's own
output, carried by the prediction), and the head's per-frame
probabilities of every class, the file's most probable class on top. Each spectrogram column and
each probability cell is drawn centred on the middle of the window it was computed from.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # Predictions write files; they never open windows.

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from brogue import atomic  # noqa: E402
from brogue.extract.audio import load_audio  # noqa: E402
from brogue.extract.yamnet.params import Params  # noqa: E402
from brogue.train.predict import FilePrediction  # noqa: E402


def _extent(count: int, hop: float, window: float) -> tuple[float, float]:
    """Left and right edges of `count` cells of width `hop` centred on their windows."""
    left = window / 2 - hop / 2
    return left, left + count * hop


def plot_prediction(prediction: FilePrediction, params: Params, path: Path) -> None:
    """Draw the figure of `prediction` into the PNG `path`, decoding its file once more."""
    waveform = load_audio(prediction.path)
    log_mel = prediction.log_mel
    order = np.argsort(prediction.probabilities)[::-1]
    fig, (wave, mel, probs) = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    wave.plot(np.arange(len(waveform)) / params.sample_rate, waveform, linewidth=0.5)
    wave.set_ylabel("waveform")
    left, right = _extent(len(log_mel), params.stft_hop_seconds, params.stft_window_seconds)
    mel.imshow(
        log_mel.T,
        aspect="auto",
        interpolation="nearest",
        origin="lower",
        extent=(left, right, -0.5, params.mel_bands - 0.5),
    )
    mel.set_ylabel("log-mel band")
    left, right = _extent(
        len(prediction.speech), params.patch_hop_seconds, params.patch_window_seconds
    )
    probs.imshow(
        prediction.frame_probabilities[:, order].T,
        aspect="auto",
        interpolation="nearest",
        cmap="gray_r",
        vmin=0.0,
        vmax=1.0,
        extent=(left, right, len(order) - 0.5, -0.5),
    )
    probs.set_yticks(range(len(order)), [prediction.classes[i] for i in order])
    probs.set_xlabel("seconds")
    # The log-mel spectrogram covers the zero padding YAMNet adds up to its last frame.
    wave.set_xlim(0.0, max(len(waveform) / params.sample_rate, right))
    fig.suptitle(
        f"{Path(prediction.path).name}: {prediction.accent} "
        f"({prediction.probabilities[order[0]]:.2f})"
    )
    fig.tight_layout()
    with atomic.atomic_path(path) as partial:
        fig.savefig(partial, dpi=100)
    plt.close(fig)
