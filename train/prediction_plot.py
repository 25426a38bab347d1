"""The Keras example's inference figure, with its three time axes aligned in seconds.

Top to bottom: the waveform (its envelope, carried by the prediction, so the file is not decoded
again), the log-mel spectrogram the encoder classified (only where it keeps one, as YAMNet
does; GE2E's and hf's figures have two panels), and the head's per-frame probabilities of every
class, the file's most probable class on top, titled with the encoder's own frame window and
hop. Each spectrogram
column and each probability cell is drawn centred on the middle of the window it came from.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # Predictions write files; they never open windows.

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from brogue import atomic  # noqa: E402
from brogue.extract.frames import LOG_MEL_HOP_S, LOG_MEL_WINDOW_S  # noqa: E402
from brogue.inference.predict import FilePrediction  # noqa: E402


def _extent(count: int, hop: float, window: float) -> tuple[float, float]:
    """Left and right edges of `count` cells of width `hop` centred on their windows."""
    left = window / 2 - hop / 2
    return left, left + count * hop


def plot_prediction(prediction: FilePrediction, path: Path) -> None:
    """Draw the figure of `prediction` into the PNG `path`."""
    envelope, log_mel = prediction.envelope, prediction.log_mel
    order = np.argsort(prediction.probabilities)[::-1]
    panels = 3 if log_mel is not None else 2
    fig, axes = plt.subplots(panels, 1, figsize=(10, 7), sharex=True)
    wave, probs = axes[0], axes[-1]
    times = np.arange(len(envelope)) * LOG_MEL_HOP_S
    wave.fill_between(times, envelope[:, 0], envelope[:, 1], step="post", linewidth=0.5)
    wave.set_ylabel("waveform")
    right = 0.0
    if log_mel is not None:
        mel = axes[1]
        left, right = _extent(len(log_mel), LOG_MEL_HOP_S, LOG_MEL_WINDOW_S)
        mel.imshow(log_mel.T, aspect="auto", interpolation="nearest", origin="lower",
                   extent=(left, right, -0.5, log_mel.shape[1] - 0.5))  # fmt: skip
        mel.set_ylabel("log-mel band")
    left, right_frames = _extent(len(prediction.speech), prediction.frame_hop_seconds,
                                 prediction.frame_window_seconds)  # fmt: skip
    probs.imshow(
        prediction.frame_probabilities[:, order].T,
        aspect="auto",
        interpolation="nearest",
        cmap="gray_r",
        vmin=0.0,
        vmax=1.0,
        extent=(left, right_frames, len(order) - 0.5, -0.5),
    )
    probs.set_yticks(range(len(order)), [prediction.classes[i] for i in order])
    probs.set_title(f"each class's probability in every {prediction.frame_window_seconds:g} s "
                    f"frame, one every {prediction.frame_hop_seconds:g} s", fontsize="small")
    probs.set_xlabel("seconds")
    # The spectrogram and the frames cover the zero padding up to the encoder's last frame.
    wave.set_xlim(0.0, max(prediction.seconds, right, right_frames))
    fig.suptitle(
        f"{Path(prediction.path).name}: {prediction.accent} "
        f"({prediction.probabilities[order[0]]:.2f})"
    )
    fig.tight_layout()
    with atomic.atomic_path(path) as partial:
        fig.savefig(partial, dpi=100)
    plt.close(fig)
