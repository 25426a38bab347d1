"""Calibration: the map of `brogue.inference.calibration` fitted on the validation clips only,
and the measures of how well a set of probabilities is calibrated.

Two kinds of map, q = softmax(scale · log p + shift), are fitted by minimising the validation
clips' log loss:

- temperature: scale = 1/T for every accent, shift 0 (one parameter; the argmax never moves);
- vector: a scale and a shift per accent (vector scaling; it may move the argmax).

Test clips never reach `fit_map`.

The measures (`calibration_scores`) are expected calibration error over 15 equal-width bins
of the top probability, Brier score, log loss, mean top probability and accuracy, each with its
95% interval from the speaker bootstrap of `train.metrics`, and the reliability bins. Beside
ECE stands the ECE that perfectly calibrated probabilities would show on as many clips
(`ece_if_calibrated`): on a few hundred clips that chance alone is several hundredths, so an
ECE near it is all the clips can tell apart from calibrated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.stats import binom

from brogue.inference.calibration import FLOOR, CalibrationMap, identity
from brogue.train.metrics import BOOTSTRAP_ROUNDS, speaker_draws

BINS = 15  # equal-width bins of the top probability, as Guo et al. measure ECE
CONSISTENCY_DRAWS = 1000  # label sets drawn for `ece_if_calibrated`
LOG_LOSS_FLOOR = 1e-15  # scikit-learn's log_loss clips so
TEMPERATURE_BOUNDS = (0.05, 100.0)


def _log_loss(logits: np.ndarray, truth: np.ndarray) -> float:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_q = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_q[np.arange(len(truth)), truth].mean())


def fit_map(probabilities: np.ndarray, truth: np.ndarray, kind: str) -> CalibrationMap:
    """The `kind` map that minimises the log loss of the validation clips' `probabilities`
    [n, A] against their accents `truth` [n]."""
    accents = probabilities.shape[1]
    logits = np.log(np.maximum(probabilities.astype(np.float64), FLOOR))
    bounds = np.log(TEMPERATURE_BOUNDS)
    fitted = minimize_scalar(lambda log_t: _log_loss(logits / np.exp(log_t), truth),
                             bounds=bounds, method="bounded")  # fmt: skip
    scale = float(np.exp(-fitted.x))
    if kind == "temperature":
        return CalibrationMap(kind, [scale] * accents, [0.0] * accents)

    def loss(params: np.ndarray) -> float:
        return _log_loss(logits * params[:accents] + params[accents:], truth)

    start = np.r_[np.full(accents, scale), np.zeros(accents)]
    limits = [(0.0, 1.0 / TEMPERATURE_BOUNDS[0])] * accents + [(-10.0, 10.0)] * accents
    params = minimize(loss, start, method="L-BFGS-B", bounds=limits).x
    return CalibrationMap(kind, params[:accents].tolist(), params[accents:].tolist())


# --- measures ---

_MEANS = ("accuracy", "mean_top_probability", "brier", "log_loss")


def _bin_of(top: np.ndarray) -> np.ndarray:
    """The reliability bin of each top probability."""
    return np.minimum((top * BINS).astype(int), BINS - 1)


def _per_clip(probabilities: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """[n, 4 + 3·BINS]: each clip's share of the means and of its reliability bin's sums
    (count, top probability, correct), so that sums over any clips give every measure."""
    n, accents = probabilities.shape
    top = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == truth).astype(np.float64)
    onehot = np.eye(accents)[truth]
    means = np.stack([correct, top, ((probabilities - onehot) ** 2).sum(axis=1),
                      -np.log(np.maximum(probabilities[np.arange(n), truth], LOG_LOSS_FLOOR))],
                     axis=1)  # fmt: skip
    bins = np.zeros((n, BINS, 3))
    bins[np.arange(n), _bin_of(top)] = np.stack([np.ones(n), top, correct], axis=1)
    return np.concatenate([means, bins.reshape(n, -1)], axis=1)


def _from_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Every measure from sums of `_per_clip` rows ([..., 4 + 3·BINS])."""
    bins = sums[..., len(_MEANS):].reshape(*sums.shape[:-1], BINS, 3)
    count = bins[..., 0].sum(axis=-1)
    measures = {name: sums[..., k] / count for k, name in enumerate(_MEANS)}
    measures["ece"] = np.abs(bins[..., 1] - bins[..., 2]).sum(axis=-1) / count
    return measures


def ece_if_calibrated(probabilities: np.ndarray, seed: int, draws: int = CONSISTENCY_DRAWS
                      ) -> np.ndarray:  # fmt: skip
    """The ECE of each of `draws` label sets drawn from `probabilities` [n, A] themselves: what
    perfectly calibrated answers would score on these n clips by chance alone (consistency
    resampling, Bröcker & Smith 2007). A drawn label is the answer with the top probability's
    chance, so each draw is one Bernoulli per clip."""
    top = probabilities.max(axis=1)
    in_bin = np.eye(BINS)[_bin_of(top)]  # [n, BINS]
    rng = np.random.default_rng(seed)
    scores = []
    for chunk in np.array_split(np.arange(draws), max(1, draws * len(top) // 2_000_000)):
        right = rng.random((len(chunk), len(top))) < top
        scores.append(np.abs((top - right) @ in_bin).sum(axis=1) / len(top))
    return np.concatenate(scores)


def calibration_scores(probabilities: np.ndarray, truth: np.ndarray, speaker: np.ndarray,
                       seed: int, rounds: int = BOOTSTRAP_ROUNDS) -> dict[str, Any]:  # fmt: skip
    """ECE, Brier, log loss, mean top probability and accuracy of clip `probabilities` [n, A]
    against `truth`, each with its 95% speaker-bootstrap interval; the ECE perfectly calibrated
    answers would show on these clips, with its 95% range; and the reliability bins."""
    rows = _per_clip(probabilities, truth)
    speakers, owner = np.unique(speaker, return_inverse=True)
    per_speaker = np.zeros((len(speakers), rows.shape[1]))
    np.add.at(per_speaker, owner, rows)
    accent = np.zeros(len(speakers), dtype=np.int64)
    accent[owner] = truth
    drawn = sum(per_speaker[members].sum(axis=1)
                for members in speaker_draws(accent, seed, rounds))  # fmt: skip
    point, resampled = _from_sums(rows.sum(axis=0)), _from_sums(drawn)
    scores: dict[str, Any] = {"clips": int(len(truth))}
    for name, value in point.items():
        scores[name] = float(value)
        scores[f"{name}_interval"] = np.nanpercentile(resampled[name], [2.5, 97.5]).tolist()
    chance = ece_if_calibrated(probabilities, seed)
    scores["ece_if_calibrated"] = float(chance.mean())
    scores["ece_if_calibrated_interval"] = np.percentile(chance, [2.5, 97.5]).tolist()
    scores["bins"] = reliability_bins(rows.sum(axis=0))
    return scores


def reliability_bins(sums: np.ndarray) -> list[dict[str, Any]]:
    """The BINS equal-width bins of the top probability: each one's range, clip count, mean top
    probability and accuracy, and the 95% range of accuracy that calibrated answers would show
    on as many clips (Binomial at the bin's confidence); None where empty."""
    bins = sums[len(_MEANS):].reshape(BINS, 3)
    table = []
    for k, (count, top, correct) in enumerate(bins):
        filled = count > 0
        confidence = top / count if filled else None
        chance = binom.ppf([0.025, 0.975], count, confidence) / count if filled else None
        table.append({"low": k / BINS, "high": (k + 1) / BINS, "count": int(count),
                      "confidence": None if confidence is None else float(confidence),
                      "accuracy": float(correct / count) if filled else None,
                      "calibrated_accuracy_range": None if chance is None else chance.tolist()})
    return table


def before_and_after(raw: np.ndarray, calibration: CalibrationMap, truth: np.ndarray,
                     speaker: np.ndarray, seed: int) -> dict[str, Any]:  # fmt: skip
    """The calibration measures of a side's clips before (accents renormalised) and after the
    run's map, and the map's kind."""
    accents = raw.shape[1]
    return {
        "map": calibration.kind,
        "before": calibration_scores(identity(accents).apply(raw), truth, speaker, seed),
        "after": calibration_scores(calibration.apply(raw), truth, speaker, seed),
    }
