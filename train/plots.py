"""PNG figures of a run: the learning curves and annotated confusion matrices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

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
