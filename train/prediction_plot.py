"""The Keras example's inference figure, with its three time axes aligned in seconds.

Top to bottom: the waveform (its envelope, carried by the prediction, so the file is not decoded
again), the log-mel spectrogram the encoder classified (only where it keeps one, as YAMNet
does; GE2E's and hf's figures have two panels), and the head's per-frame probabilities of every
class (each frame heard alone, through the run's calibration; left out for a fused run, which
has none), the file's most probable class on top, with a colour scale, titled with the encoder's
own frame window and hop; non-speech frames are greyed out and marked "non-speech". Each
spectrogram column and each probability cell is drawn centred on the middle of the window it
came from.
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
    fig, axes = plt.subplots(panels, 1, figsize=(10, 7), sharex=True, layout="constrained")
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
    extent = (left, right_frames, len(order) - 0.5, -0.5)
    if prediction.frame_probabilities is None:
        probs.text(0.5, 0.5, "no per-frame answer: a fused run answers whole clips only",
                   ha="center", va="center", transform=probs.transAxes)  # fmt: skip
    else:
        image = probs.imshow(prediction.frame_probabilities[:, order].T, aspect="auto",
                             interpolation="nearest", cmap="gray_r", vmin=0.0, vmax=1.0,
                             extent=extent)  # fmt: skip
        fig.colorbar(image, ax=axes, label="probability", fraction=0.03, pad=0.01)
    non_speech = np.ma.masked_where(prediction.speech, np.ones(len(prediction.speech)))
    probs.imshow(np.tile(non_speech, (len(order), 1)), aspect="auto", interpolation="nearest",
                 cmap="Reds", vmin=0.0, vmax=2.0, alpha=0.8, extent=extent)  # fmt: skip
    if not prediction.speech.all():
        first = int(np.flatnonzero(~prediction.speech)[0])
        probs.text(left + (first + 0.5) * prediction.frame_hop_seconds, len(order) - 0.5,
                   "non-speech", rotation=90, va="bottom", ha="center", fontsize=8)  # fmt: skip
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
    with atomic.atomic_path(path) as partial:
        fig.savefig(partial, dpi=100)
    plt.close(fig)
