"""Scores at three levels from frame probabilities: frames, clips and speakers.

Frame scores follow the example (loss, accuracy, AUC, d-prime, per-class precision and recall).
Clips and speakers are scored on accents only: a clip's accent is the argmax of its frame
probabilities averaged over its speech frames. A clip with no speech frame would otherwise have
no answer, so it falls back to all its frames, and `no_speech_groups` counts how often.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import keras
import numpy as np
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

# Keras clips probabilities by its epsilon before the log in categorical cross-entropy.
_EPSILON = 1e-7


def d_prime(auc: float) -> float | None:
    """√2·Φ⁻¹(AUC), the separation the example compares with YAMNet's 2.318; None at 0 or 1."""
    if not 0.0 < auc < 1.0:
        return None
    return math.sqrt(2.0) * NormalDist().inv_cdf(auc)


def frame_metrics(labels: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Loss, accuracy, AUC and d-prime as Keras reports them, then per-class scores."""
    onehot = np.eye(len(classes), dtype=np.float32)[labels]
    picked = np.clip(probs[np.arange(len(labels)), labels], _EPSILON, 1.0 - _EPSILON)
    # keras.metrics.AUC (200 thresholds, one-hot flattened) is what fit reported as val_auc,
    # so the number here matches the history and the example's table.
    auc_metric = keras.metrics.AUC(name="auc")
    auc_metric.update_state(onehot, probs)
    auc = float(auc_metric.result())
    predicted = probs.argmax(axis=1)
    indices = list(range(len(classes)))
    precision, recall, _, support = precision_recall_fscore_support(
        labels, predicted, labels=indices, zero_division=0
    )
    return {
        "frames": int(len(labels)),
        "loss": float(-np.log(picked).mean()),
        "accuracy": float((predicted == labels).mean()),
        "auc": auc,
        "d_prime": d_prime(auc),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "support": int(s)}
            for name, p, r, s in zip(classes, precision, recall, support, strict=True)
        },
        "confusion": confusion_matrix(labels, predicted, labels=indices).tolist(),
    }


def pool(
    probs: np.ndarray, groups: np.ndarray, speech: np.ndarray, num_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean probabilities per group over its speech frames (all frames where it has none).

    Returns the [num_groups, C] means and a bool per group telling where the fallback was used.
    """
    speech_counts = np.bincount(groups, weights=speech, minlength=num_groups)
    fallback = speech_counts == 0
    weights = np.where(fallback[groups], 1.0, speech.astype(np.float64))
    totals = np.bincount(groups, weights=weights, minlength=num_groups)
    means = np.stack(
        [
            np.bincount(groups, weights=probs[:, c] * weights, minlength=num_groups)
            for c in range(probs.shape[1])
        ],
        axis=1,
    )
    return means / np.maximum(totals, 1e-12)[:, None], fallback


def decision_metrics(
    truth: np.ndarray, predicted: np.ndarray, accents: list[str]
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1 and the confusion matrix of accent decisions."""
    return {
        "count": int(len(truth)),
        "accuracy": float((truth == predicted).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "confusion": confusion_matrix(truth, predicted, labels=range(len(accents))).tolist(),
    }


def pooled_metrics(
    probs: np.ndarray,
    speech: np.ndarray,
    groups: np.ndarray,
    group_labels: np.ndarray,
    accents: list[str],
) -> dict[str, Any]:
    """Decide each group's accent from its pooled accent probabilities, and score the decisions.

    `groups` gives each frame's group id in [0, len(group_labels)); groups without frames are
    left out, as happens for speakers of the other side of a split.
    """
    means, fallback = pool(probs[:, : len(accents)], groups, speech, len(group_labels))
    present = np.bincount(groups, minlength=len(group_labels)) > 0
    scores = decision_metrics(group_labels[present], means[present].argmax(axis=1), accents)
    scores["no_speech_groups"] = int((fallback & present).sum())
    return scores


def majority_baseline(
    train_labels: np.ndarray, truth: np.ndarray, accents: list[str]
) -> dict[str, Any]:
    """Scores of always answering the most common training accent, the bar to clear."""
    majority = int(np.bincount(train_labels, minlength=len(accents)).argmax())
    scores = decision_metrics(truth, np.full_like(truth, majority), accents)
    return {"answer": accents[majority], **scores}
