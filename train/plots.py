"""PNG figures of a run: the learning curves, annotated confusion matrices and the reliability
diagram."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # Runs write files; they never open windows.

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from brogue import atomic  # noqa: E402


def plot_history(history: Mapping[str, Sequence[float]], path: Path) -> None:
    """Training and validation accuracy and AUC per epoch, side by side as in the example."""
    fig, axes = plt.subplots(nrows=1, ncols=2, figsize=(14, 5))
    for axis, metric, title in zip(axes, ("accuracy", "auc"), ("Accuracy", "AUC"), strict=True):
        epochs = np.arange(1, len(history[metric]) + 1)
        axis.plot(epochs, history[metric], label="Training")
        axis.plot(epochs, history[f"val_{metric}"], label="Validation")
        axis.set_xlabel("Epoch")
        axis.set_title(f"Training & Validation {title}")
        axis.legend()
        axis.grid(True)
    fig.tight_layout()
    with atomic.atomic_path(path) as partial:
        fig.savefig(partial, dpi=100)
    plt.close(fig)


def plot_confusion(
    matrix: Sequence[Sequence[int]], names: Sequence[str], title: str, path: Path
) -> None:
    """A count-annotated confusion matrix, rows the truth, columns the prediction.

    Each cell is shaded by its share of the row (the recall), so a small class's mistakes stay
    visible next to Southern's thousands of frames.
    """
    counts = np.asarray(matrix)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 2.0 + 1.1 * len(names)
    fig, axis = plt.subplots(figsize=(size + 1.5, size))
    image = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=axis, label="share of the row")
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if shares[row, column] > 0.5 else "black"
        axis.text(column, row, f"{count:g}", ha="center", va="center", color=colour)
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), names)
    axis.set_xlabel("Prediction")
    axis.set_ylabel("Label")
    axis.set_title(title)
    fig.tight_layout()
    with atomic.atomic_path(path) as partial:
        fig.savefig(partial, dpi=100)
    plt.close(fig)


def plot_reliability(calibration: Mapping[str, Any], clips: str, path: Path) -> None:
    """The reliability diagram of `calibration` (`train.calibration.before_and_after`): each
    bin's accuracy against its mean top probability, before and after the map, over the
    diagonal of perfect calibration with the range calibrated answers would show by chance in
    each bin after the map, and below it how many clips each bin holds."""
    fig, (curve, counts) = plt.subplots(2, 1, figsize=(6, 7), sharex=True,
                                        gridspec_kw={"height_ratios": (3, 1)})  # fmt: skip
    curve.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    width = 1.0 / len(calibration["before"]["bins"])
    for offset, (when, colour) in enumerate((("before", "tab:red"), ("after", "tab:blue"))):
        scores = calibration[when]
        bins = [b for b in scores["bins"] if b["count"]]
        curve.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-",
                   color=colour, label=f"{when} (ECE {scores['ece']:.3f}; calibrated answers "
                   f"{scores['ece_if_calibrated']:.3f} by chance)")  # fmt: skip
        if when == "after":  # how far from the diagonal calibrated answers stray by chance
            confidence = np.array([b["confidence"] for b in bins])
            low, high = np.array([b["calibrated_accuracy_range"] for b in bins]).T
            # A bin of a few near-certain clips has its whole range above its confidence.
            below, above = np.maximum(confidence - low, 0), np.maximum(high - confidence, 0)
            curve.errorbar(confidence, confidence, yerr=[below, above],
                           fmt="none", ecolor="grey", capsize=3,
                           label="95% range of calibrated answers")  # fmt: skip
        counts.bar([b["low"] + width * (0.25 + 0.5 * offset) for b in scores["bins"]],
                   [b["count"] for b in scores["bins"]], width=width / 2, color=colour)
    curve.set_xlim(0, 1)
    curve.set_ylim(0, 1)
    curve.set_ylabel("accuracy")
    curve.set_title(f"Reliability of the {clips}")
    curve.legend(loc="upper left")
    curve.grid(True)
    counts.set_xlabel("top probability")
    counts.set_ylabel("clips")
    fig.tight_layout()
    with atomic.atomic_path(path) as partial:
        fig.savefig(partial, dpi=100)
    plt.close(fig)
