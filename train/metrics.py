"""Scores at three levels from frame probabilities: frames, clips and speakers.

Frame scores follow the example (loss, accuracy, AUC, d-prime, per-class precision and recall).
Clips and speakers are scored on accents only, with balanced accuracy's 95% interval from a
bootstrap over speakers. A frame-level model's clip accent is the argmax of its frame
probabilities averaged over the clip's speech frames; a clip with no speech frame would
otherwise have no answer, so it falls back to all its frames, and `no_speech_groups` counts how
often. Clip-level models pool the same frames themselves (`train.families`).
"""

from __future__ import annotations

import math
import warnings
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
# Bootstrap draws per interval: the 2.5% and 97.5% percentiles move by under 0.005 beyond this.
BOOTSTRAP_ROUNDS = 2000


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

    `speech` may also be non-negative weights, e.g. the frames each of a speaker's clips pooled.
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
    with warnings.catch_warnings():
        # Balanced accuracy averages the recall of the accents present; a side that lacks an
        # accent the model answers is expected with few speakers, not worth a warning.
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(truth, predicted))
    return {
        "count": int(len(truth)),
        "accuracy": float((truth == predicted).mean()),
        "balanced_accuracy": balanced,
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "confusion": confusion_matrix(truth, predicted, labels=range(len(accents))).tolist(),
    }


def speaker_bootstrap(
    truth: np.ndarray, predicted: np.ndarray, speaker: np.ndarray, seed: int,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> list[float]:
    """The 95% interval of the balanced accuracy of `predicted`, resampling whole speakers.

    Decisions of one speaker are not independent, so the bootstrap draws speakers, with
    replacement, each accent's from its own speakers (every accent stays in every draw, so
    balanced accuracy stays defined), and keeps all the drawn speakers' decisions. For speaker
    decisions pass each speaker as its own `speaker`. Seeded: the same inputs, the same interval.
    """
    speakers, owner = np.unique(speaker, return_inverse=True)
    correct = np.bincount(owner, weights=truth == predicted, minlength=len(speakers))
    total = np.bincount(owner, minlength=len(speakers))
    accent = np.zeros(len(speakers), dtype=np.int64)
    accent[owner] = truth
    recalls = [correct[drawn].sum(axis=1) / total[drawn].sum(axis=1)
               for drawn in speaker_draws(accent, seed, rounds)]  # fmt: skip
    scores = np.mean(recalls, axis=0)
    return np.percentile(scores, [2.5, 97.5]).tolist()


def speaker_draws(accent: np.ndarray, seed: int, rounds: int = BOOTSTRAP_ROUNDS
                  ) -> list[np.ndarray]:  # fmt: skip
    """The speaker bootstrap's draws: for each accent (in order), [rounds, its speakers] indices
    into `accent` (each speaker's accent), drawn with replacement from that accent's speakers."""
    rng = np.random.default_rng(seed)
    draws = []
    for label in np.unique(accent):
        members = np.flatnonzero(accent == label)
        draws.append(members[rng.integers(0, len(members), (rounds, len(members)))])
    return draws


def clip_and_speaker_metrics(
    probs: np.ndarray, weight: np.ndarray, fallback: np.ndarray, truth: np.ndarray,
    speaker: np.ndarray, accents: list[str], seed: int,
) -> dict[str, dict[str, Any]]:
    """Scores of clip decisions and of speaker decisions, each with its speaker-bootstrap interval.

    `probs` [n, A] are the clips' accent probabilities, `weight` how many frames each was pooled
    over and `fallback` whether those were all its frames for want of speech. A speaker's
    decision pools their clips' probabilities weighted by those frames, so for frame-level
    models it is the mean over all the speaker's speech frames. Each level's "decisions" (the
    clips' decided accents; speaker → (accent, decision)) are for decisions.csv.
    """
    predicted = probs.argmax(axis=1)
    clip = decision_metrics(truth, predicted, accents)
    clip["interval"] = speaker_bootstrap(truth, predicted, speaker, seed)
    clip["no_speech_groups"] = int(fallback.sum())
    clip["decisions"] = predicted
    speakers, owner = np.unique(speaker, return_inverse=True)
    pooled, _ = pool(probs, owner, weight, len(speakers))
    speaker_truth = np.zeros(len(speakers), dtype=np.int64)
    speaker_truth[owner] = truth
    decisions = pooled.argmax(axis=1)
    scores = decision_metrics(speaker_truth, decisions, accents)
    scores["interval"] = speaker_bootstrap(speaker_truth, decisions, speakers, seed)
    silent = np.bincount(owner, weights=~fallback, minlength=len(speakers)) == 0
    scores["no_speech_groups"] = int(silent.sum())
    rows = zip(speakers.tolist(), speaker_truth, decisions, strict=True)
    scores["decisions"] = {name: (int(truth), int(decided)) for name, truth, decided in rows}
    return {"clip": clip, "speaker": scores}


def majority_baseline(
    train_labels: np.ndarray, truth: np.ndarray, accents: list[str]
) -> dict[str, Any]:
    """Scores of always answering the most common training accent, the bar to clear."""
    majority = int(np.bincount(train_labels, minlength=len(accents)).argmax())
    scores = decision_metrics(truth, np.full_like(truth, majority), accents)
    return {"answer": accents[majority], **scores}
