"""Class weights from frame counts that the cache already holds, never from a pass over frames.

The example counted its training frames by iterating the whole dataset; the clip table records
each clip's frames and speech frames, which is all the frame-labelling rule needs.
"""

from __future__ import annotations

import numpy as np


def frame_counts(
    clip_labels: np.ndarray, frames: np.ndarray, speech_frames: np.ndarray, num_classes: int
) -> np.ndarray:
    """Training frames per class: a clip's speech frames count for its accent, the rest for
    "Not a speech", the last class."""
    counts = np.bincount(clip_labels, weights=speech_frames, minlength=num_classes)
    counts[num_classes - 1] += np.sum(frames - speech_frames)
    return counts.astype(np.int64)


def class_weights(counts: np.ndarray, formula: str) -> np.ndarray:
    """`example`: total / count, the example's formula; `balanced`: total / (classes · count).

    A class without training frames gets weight 0: it never occurs in a batch, and a finite
    number keeps the weights writable as JSON.
    """
    present = counts > 0
    scale = {"example": 1, "balanced": int(present.sum())}[formula]
    return np.where(present, counts.sum() / (scale * np.maximum(counts, 1)), 0.0)
