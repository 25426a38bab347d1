"""`evaluate`: score a run's model on both sides of its split; write metrics.json and plots.

metrics.json keeps one stable layout: `metrics[side][level][name]`, with side "train" or
"valid" and level "frame", "clip", "speaker" or "baseline" (always answering the training
set's most common accent, scored per clip), e.g. `metrics["valid"]["clip"]["accuracy"]`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

from brogue import atomic
from brogue.errors import BrogueError
from brogue.extract.yamnet.params import SPEECH_CLASS
from brogue.train.config import TrainConfig, load_config
from brogue.train.corpus import Corpus, load_corpus
from brogue.train.metrics import frame_metrics, majority_baseline, pooled_metrics
from brogue.train.plots import plot_confusion, plot_history
from brogue.train.splits import Split, split_from_json
from brogue.train.stream import frame_labels, read_top_class

# (level, name, label) rows of the terminal summary and of the fold summary.
SUMMARY = (
    ("frame", "accuracy", "frame accuracy"),
    ("frame", "auc", "frame AUC"),
    ("frame", "d_prime", "frame d-prime"),
    ("clip", "accuracy", "clip accuracy"),
    ("clip", "balanced_accuracy", "clip balanced accuracy"),
    ("clip", "macro_f1", "clip macro-F1"),
    ("speaker", "accuracy", "speaker accuracy"),
    ("speaker", "balanced_accuracy", "speaker balanced accuracy"),
    ("baseline", "accuracy", "majority-class clip accuracy"),
)


class EvaluateError(BrogueError):
    """A run cannot be evaluated on this cache; the message is one line."""


def side_metrics(
    corpus: Corpus,
    model: keras.Model,
    chosen: np.ndarray,
    train: np.ndarray,
    config: TrainConfig,
) -> dict[str, Any]:
    """Frame, clip, speaker and majority-baseline scores of the `chosen` clips."""
    feed = corpus.feed(chosen, config, config.ram_budget_bytes, shuffle=False)
    probs = model.predict(feed, verbose=0)
    clips = np.concatenate([block.clips for block in feed.blocks])
    top_class = read_top_class(feed.reader, feed.blocks)
    labels = frame_labels(top_class, corpus.label[clips], len(corpus.classes) - 1)
    speech = top_class == SPEECH_CLASS
    speakers, speaker_of_clip = np.unique(corpus.speaker, return_inverse=True)
    speaker_label = np.zeros(len(speakers), dtype=np.int64)
    speaker_label[speaker_of_clip] = corpus.label
    return {
        "frame": frame_metrics(labels, probs, corpus.classes),
        "clip": pooled_metrics(probs, speech, clips, corpus.label, corpus.accents),
        "speaker": pooled_metrics(
            probs, speech, speaker_of_clip[clips], speaker_label, corpus.accents
        ),
        "baseline": majority_baseline(corpus.label[train], corpus.label[chosen], corpus.accents),
    }


def split_summary(corpus: Corpus, split: Split) -> dict[str, Any]:
    """How the split was drawn, and the speakers, clips and frames on each side."""
    summary = split.describe()
    for side, mask in (("train", split.train), ("valid", split.valid)):
        summary[side] = {
            "speakers": int(np.unique(corpus.speaker[mask]).size),
            "clips": int(mask.sum()),
            "frames": int(corpus.num_frames[mask].sum()),
        }
    return summary


def evaluate_run(run: Path, corpus: Corpus, model: keras.Model | None = None) -> dict[str, Any]:
    """Score the run in `run` on `corpus`, write metrics.json and the plots, print a summary."""
    facts = json.loads((run / "run.json").read_text())
    if facts["classes"] != corpus.classes:
        raise EvaluateError(f"{run} was trained on classes {facts['classes']}, the cache has "
                            f"{corpus.classes}")  # fmt: skip
    if facts["cache"]["fingerprint"] != corpus.cache.fingerprint:
        raise EvaluateError(f"{run} was trained on embeddings from another YAMNet than the "
                            f"cache's ({corpus.cache.fingerprint})")  # fmt: skip
    config = load_config(run / "config.json", {})
    split = split_from_json(corpus, json.loads((run / "split.json").read_text()))
    if model is None:
        model = keras.models.load_model(run / "model.keras")
    metrics = {
        "classes": corpus.classes,
        "split": split_summary(corpus, split),
        **{key: facts[key] for key in ("class_weight", "epochs_run", "best_epoch",
                                       "seconds_per_epoch")},
        "train": side_metrics(corpus, model, split.train, split.train, config),
        "valid": side_metrics(corpus, model, split.valid, split.train, config),
    }  # fmt: skip
    atomic.write_text(run / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    write_plots(run, metrics)
    print(summary_table(metrics))
    return metrics


def write_plots(run: Path, metrics: dict[str, Any]) -> None:
    """history.png from history.csv; confusion_frame.png and confusion_clip.png (validation)."""
    with open(run / "history.csv", newline="") as lines:
        rows = list(csv.DictReader(lines))
    history = {name: [float(row[name]) for row in rows] for name in rows[0] if name != "epoch"}
    plot_history(history, run / "history.png")
    # Frames are judged on every class, clips only on the accents.
    for level, names in (("frame", metrics["classes"]), ("clip", metrics["classes"][:-1])):
        confusion = metrics["valid"][level]["confusion"]
        title = f"Validation confusion matrix, {level}s"
        plot_confusion(confusion, names, title, run / f"confusion_{level}.png")


def _cell(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.3f}"


def summary_table(metrics: dict[str, Any]) -> str:
    """The headline numbers for train and valid as a small text table."""
    lines = [f"{'':30} {'train':>6} {'valid':>6}"]
    for level, name, label in SUMMARY:
        values = [metrics[side][level][name] for side in ("train", "valid")]
        lines.append(f"{label:30} {_cell(values[0])} {_cell(values[1])}")
    answer = metrics["valid"]["baseline"]["answer"]
    lines.append(f"(majority class: {answer}; split: {metrics['split']['kind']})")
    return "\n".join(lines)


def fold_table(summary: dict[str, Any]) -> str:
    """The validation numbers of a cross-validation as mean ± standard deviation over folds."""
    lines = [f"{'':30} valid, {summary['folds']} folds"]
    for level, name, label in SUMMARY:
        cell = summary["valid"][level][name]
        value = "n/a" if cell["mean"] is None else f"{cell['mean']:.3f} ± {cell['std']:.3f}"
        lines.append(f"{label:30} {value}")
    return "\n".join(lines)


def fold_summary(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each summary number per fold, with its mean and standard deviation, per side."""
    summary: dict[str, Any] = {"folds": len(folds)}
    for side in ("train", "valid"):
        summary[side] = {}
        for level, name, _ in SUMMARY:
            values = [fold[side][level][name] for fold in folds]
            known = [v for v in values if v is not None]
            summary[side].setdefault(level, {})[name] = {
                "values": values,
                "mean": float(np.mean(known)) if known else None,
                "std": float(np.std(known)) if known else None,
            }
    return summary


def evaluate(run: Path, cache: Path | None = None) -> dict[str, Any]:
    """Re-score a finished run, on its own cache or on `cache` (same YAMNet required)."""
    if not (run / "run.json").is_file():
        raise EvaluateError(f"{run} is not a finished run folder (no run.json)")
    if cache is None:
        cache = Path(json.loads((run / "run.json").read_text())["cache"]["directory"])
    return evaluate_run(run, load_corpus(cache))
