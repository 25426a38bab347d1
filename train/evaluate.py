"""`evaluate`: score a run's model on every side of its split; write metrics.json and plots.

The run's files are read through `brogue.inference.run_folder`, and a finished run's model is
loaded as inference loads it (`brogue.inference.trained_run.load_model`).

metrics.json keeps one layout: `metrics[side][level][name]`, with side "train", "valid" or
"test" and level "frame" (frame-level families only, else null), "clip", "speaker" or
"baseline" (always answering the training set's most common accent, scored per clip), e.g.
`metrics["test"]["clip"]["balanced_accuracy"]`. Clip and speaker levels carry `interval`, the
95% speaker-bootstrap interval of balanced accuracy, and `metrics[side]["speakers"]` counts each
accent's speakers on that side. decisions.csv lists every clip's and speaker's decision.

Test is scored only here, after the model is final, and nothing reads it to choose anything.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from sklearn.metrics import balanced_accuracy_score

from brogue import atomic
from brogue.errors import BrogueError
from brogue.inference import run_folder
from brogue.inference.trained_run import load_model
from brogue.train.config import TrainConfig, load_config
from brogue.train.dataset import Corpus
from brogue.train.families import FAMILIES, Family
from brogue.train.fusion import load_fused
from brogue.train.metrics import clip_and_speaker_metrics, majority_baseline, speaker_bootstrap
from brogue.train.plots import plot_confusion, plot_history
from brogue.train.splits import Split, split_from_json

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
# An accent with fewer test speakers than this gets a warning line under the table.
FEW_SPEAKERS = 3
DECISION_COLUMNS = ("level", "side", "name", "speaker", "accent", "predicted")


class EvaluateError(BrogueError):
    """A run cannot be evaluated on this cache; the message is one line."""


def side_metrics(
    corpus: Corpus,
    family: Family,
    model: keras.Model,
    chosen: np.ndarray,
    train: np.ndarray,
    config: TrainConfig,
) -> dict[str, Any]:
    """Frame, clip, speaker and majority-baseline scores of the `chosen` clips, and the
    decisions behind them (under "decisions", which metrics.json leaves out)."""
    probs, frame = family.score(corpus, model, chosen, config)
    clips = np.flatnonzero(chosen)
    fallback = corpus.speech_frames[clips] == 0
    pooled_frames = np.where(fallback, corpus.num_frames[clips], corpus.speech_frames[clips])
    truth, speakers = corpus.label[clips], corpus.speaker[clips]
    levels = clip_and_speaker_metrics(
        probs, pooled_frames, fallback, truth, speakers, corpus.accents, config.seed
    )
    counts = {accent: int(np.unique(speakers[truth == k]).size)
              for k, accent in enumerate(corpus.accents)}  # fmt: skip
    return {
        "frame": frame,
        **levels,
        "baseline": majority_baseline(corpus.label[train], truth, corpus.accents),
        "speakers": counts,
    }


def split_summary(corpus: Corpus, split: Split) -> dict[str, Any]:
    """How the split was drawn, and the speakers, clips and frames on each side."""
    summary = split.describe()
    for side, mask in split.sides():
        summary[side] = {
            "speakers": int(np.unique(corpus.speaker[mask]).size),
            "clips": int(mask.sum()),
            "frames": int(corpus.num_frames[mask].sum()),
        }
    return summary


def evaluate_run(
    run: Path, corpus: Corpus, model: keras.Model | None = None, test: bool = True
) -> dict[str, Any]:
    """Score the run in `run` on `corpus`, write metrics.json and the plots, print a summary.

    `test=False` leaves the test side unscored, as a sweep's trials do until one is chosen.
    """
    facts = run_folder.read_facts(run)
    if facts["classes"] != corpus.classes:
        raise EvaluateError(f"{run} was trained on classes {facts['classes']}, the cache has "
                            f"{corpus.classes}")  # fmt: skip
    trained_on = [record.fingerprint for record in run_folder.encoder_records(run, facts)]
    if len(trained_on) != len(corpus.encoders):
        raise EvaluateError(f"{run} was trained on {len(trained_on)} caches fused, not "
                            f"{len(corpus.encoders)}")  # fmt: skip
    for fingerprint, encoder in zip(trained_on, corpus.encoders, strict=True):
        if fingerprint != encoder.fingerprint:
            raise EvaluateError(f"{run} was trained on embeddings of other weights than the "
                                f"cache's ({encoder.describe()})")  # fmt: skip
    config = load_config(run / run_folder.CONFIG, {})
    family = FAMILIES[config.model]
    split = split_from_json(corpus, json.loads((run / run_folder.SPLIT).read_text()))
    if model is None:
        model = load_model(run)
    metrics: dict[str, Any] = {
        "classes": corpus.classes,
        "model": config.model,
        "split": split_summary(corpus, split),
        **{key: facts.get(key) for key in ("class_weight", "epochs_run", "best_epoch",
                                           "seconds_per_epoch", "train_seconds")},
    }  # fmt: skip
    for side, mask in split.sides():
        if side != "test" or test:
            metrics[side] = side_metrics(corpus, family, model, mask, split.train, config)
    write_decisions(run / run_folder.DECISIONS, corpus, split, metrics)
    atomic.write_text(run / run_folder.METRICS, json.dumps(metrics, indent=1) + "\n")
    write_plots(run, metrics)
    print(summary_table(metrics))
    return metrics


def write_decisions(path: Path, corpus: Corpus, split: Split, metrics: dict[str, Any]) -> None:
    """Every clip's and speaker's accent and decision, per side, as decisions.csv."""
    rows = []
    for side, mask in split.sides():
        if side not in metrics:
            continue
        clips = np.flatnonzero(mask)
        decisions = metrics[side]["clip"].pop("decisions")
        for clip, predicted in zip(clips, decisions, strict=True):
            rows.append(("clip", side, corpus.key[clip], corpus.speaker[clip],
                         corpus.accents[corpus.label[clip]], corpus.accents[predicted]))
        for speaker, (truth, predicted) in metrics[side]["speaker"].pop("decisions").items():
            rows.append(("speaker", side, speaker, speaker, corpus.accents[truth],
                         corpus.accents[predicted]))  # fmt: skip
    with atomic.atomic_path(path) as temporary, open(temporary, "w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(DECISION_COLUMNS)
        writer.writerows(rows)


def write_plots(run: Path, metrics: dict[str, Any]) -> None:
    """history.png from history.csv (families trained by epochs); the validation confusion
    matrices confusion_frame.png (frame-level families) and confusion_clip.png."""
    if (run / run_folder.HISTORY).is_file():
        with open(run / run_folder.HISTORY, newline="") as lines:
            rows = list(csv.DictReader(lines))
        history = {name: [float(row[name]) for row in rows] for name in rows[0] if name != "epoch"}
        plot_history(history, run / "history.png")
    # Frames are judged on every class, clips only on the accents.
    for level, names in (("frame", metrics["classes"]), ("clip", metrics["classes"][:-1])):
        if metrics["valid"][level] is not None:
            confusion = metrics["valid"][level]["confusion"]
            title = f"Validation confusion matrix, {level}s"
            plot_confusion(confusion, names, title, run / f"confusion_{level}.png")


def _value(scores: dict[str, Any] | None, level: str, name: str) -> str:
    value = None if scores is None or scores[level] is None else scores[level][name]
    if value is None:
        return "n/a"
    interval = scores[level].get("interval") if name == "balanced_accuracy" else None
    return f"{value:.3f}" + ("" if interval is None else f" [{interval[0]:.2f}, {interval[1]:.2f}]")


def few_speakers(counts: dict[str, int]) -> str | None:
    """The warning line for accents with fewer than FEW_SPEAKERS test speakers, if any."""
    few = [f"{accent} {count}" for accent, count in counts.items() if count < FEW_SPEAKERS]
    if not few:
        return None
    return (f"warning: fewer than {FEW_SPEAKERS} test speakers for {', '.join(few)}: "
            "their test scores rest on few voices")  # fmt: skip


def summary_table(metrics: dict[str, Any]) -> str:
    """The headline numbers for train, valid and test side by side, with 95% intervals."""
    sides = [side for side in ("train", "valid", "test") if side in metrics]
    lines = [f"{'':30} " + " ".join(f"{side:20}" for side in sides).rstrip()]
    for level, name, label in SUMMARY:
        cells = " ".join(f"{_value(metrics[side], level, name):20}" for side in sides)
        lines.append(f"{label:30} {cells}".rstrip())
    answer = metrics["valid"]["baseline"]["answer"]
    lines.append(f"(model: {metrics['model']}; majority class: {answer}; split: "
                 f"{metrics['split']['kind']}; [95% interval, resampling speakers])")  # fmt: skip
    if "test" in metrics:
        lines.append("test speakers: " + ", ".join(
            f"{accent} {count}" for accent, count in metrics["test"]["speakers"].items()))
        warning = few_speakers(metrics["test"]["speakers"])
        lines += [warning] if warning else []
    elif metrics["split"]["kind"] == "random":
        lines.append("no test side: split=random is the example's train/valid file split")
    return "\n".join(lines)


def fold_summary(folds: list[dict[str, Any]], decisions: Sequence[Path], seed: int
                 ) -> dict[str, Any]:  # fmt: skip
    """Each summary number per fold, with its mean and standard deviation, per side; and the
    test decisions of all folds pooled (every speaker is tested once) with their intervals."""
    summary: dict[str, Any] = {"folds": len(folds)}
    for side in ("train", "valid", "test"):
        summary[side] = {}
        for level, name, _ in SUMMARY:
            values = [None if fold[side][level] is None else fold[side][level][name]
                      for fold in folds]  # fmt: skip
            known = [v for v in values if v is not None]
            summary[side].setdefault(level, {})[name] = {
                "values": values,
                "mean": float(np.mean(known)) if known else None,
                "std": float(np.std(known)) if known else None,
            }
    summary["test_pooled"] = pooled_test(decisions, seed)
    return summary


def pooled_test(paths: Sequence[Path], seed: int) -> dict[str, Any]:
    """Balanced accuracy of the test decisions of all folds together, with 95% intervals."""
    rows = []
    for path in paths:
        with open(path, newline="") as table:
            rows += [row for row in csv.DictReader(table) if row["side"] == "test"]
    pooled = {}
    for level in ("clip", "speaker"):
        chosen = [row for row in rows if row["level"] == level]
        names = sorted({row["accent"] for row in chosen} | {row["predicted"] for row in chosen})
        truth = np.array([names.index(row["accent"]) for row in chosen])
        predicted = np.array([names.index(row["predicted"]) for row in chosen])
        speakers = np.array([row["speaker"] for row in chosen])
        pooled[level] = {
            "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
            "interval": speaker_bootstrap(truth, predicted, speakers, seed),
            "count": len(chosen),
        }
    return pooled


def fold_table(summary: dict[str, Any]) -> str:
    """Valid and test numbers of a nested cross-validation: mean ± std over folds, and the
    pooled test balanced accuracies with their intervals."""
    folds = summary["folds"]
    lines = [f"{'':30} {f'valid, {folds} folds':20} test, {folds} folds"]
    for level, name, label in SUMMARY:
        cells = []
        for side in ("valid", "test"):
            cell = summary[side][level][name]
            cells.append("n/a" if cell["mean"] is None else
                         f"{cell['mean']:.3f} ± {cell['std']:.3f}")  # fmt: skip
        lines.append(f"{label:30} {cells[0]:20} {cells[1]}")
    for level, scores in summary["test_pooled"].items():
        low, high = scores["interval"]
        lines.append(f"test {level} balanced accuracy, all folds' {scores['count']} {level}s "
                     f"pooled: {scores['balanced_accuracy']:.3f} [{low:.2f}, {high:.2f}]")
    return "\n".join(lines)


def evaluate(run: Path, caches: Sequence[Path] = ()) -> dict[str, Any]:
    """Re-score a finished run, on its own caches or on `caches` (same encoders required; a
    fused run's in the order it was fitted with)."""
    facts = run_folder.read_facts(run)
    return evaluate_run(run, load_fused(caches or run_folder.cache_directories(facts)))
