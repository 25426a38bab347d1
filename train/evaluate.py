"""`evaluate`: score a run's model on every side of its split; write metrics.json and plots.

The run's files are read through `brogue.inference.run_folder`, and a finished run's model is
loaded as inference loads it (`brogue.inference.trained_run.load_model`).

metrics.json keeps one layout: `metrics[side][level][name]`, with side "train", "valid" or
"test" and level "frame" (frame-level families only, else null), "clip", "speaker" or
"baseline" (always answering the training set's most common accent, scored per clip), e.g.
`metrics["test"]["clip"]["balanced_accuracy"]`. Clip and speaker levels carry `interval`, the
95% speaker-bootstrap interval of balanced accuracy, and `metrics[side]["speakers"]` counts each
accent's speakers on that side. decisions.csv lists every clip's and speaker's decision.

Clip probabilities are the calibrated ones (the map run.json records, fitted on the valid
clips by `fit`), so every clip and speaker score is of what predict and serve answer.
`metrics[side]["clip"]["calibration"]` holds the measures before and after the map (ECE, Brier,
log loss, mean top probability, accuracy, each with its interval, and the reliability bins);
probabilities.csv has every clip's probabilities before and after, and reliability.png the
test side's reliability diagram (valid's, for a run without a test side).

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
from brogue.inference.calibration import CalibrationMap, identity
from brogue.inference.trained_run import load_model
from brogue.train.calibration import before_and_after, calibration_scores
from brogue.train.config import TrainConfig, load_config
from brogue.train.dataset import Corpus
from brogue.train.families import FAMILIES, Family
from brogue.train.fusion import load_fused
from brogue.train.metrics import clip_and_speaker_metrics, majority_baseline, speaker_bootstrap
from brogue.train.plots import plot_confusion, plot_history, plot_reliability
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
PROBABILITY_COLUMNS = ("side", "name", "speaker", "accent")
# (name, label) rows of the calibration lines under the summary tables.
CALIBRATION = (
    ("ece", "ECE (15 bins)"),
    ("ece_if_calibrated", "  if calibrated, by chance"),
    ("brier", "Brier score"),
    ("log_loss", "log loss"),
    ("mean_top_probability", "mean top probability"),
    ("accuracy", "accuracy"),
)


class EvaluateError(BrogueError):
    """A run cannot be evaluated on this cache; the message is one line."""


def side_metrics(
    corpus: Corpus,
    family: Family,
    model: keras.Model,
    chosen: np.ndarray,
    train: np.ndarray,
    config: TrainConfig,
    calibration: CalibrationMap | None = None,
) -> dict[str, Any]:
    """Frame, clip, speaker and majority-baseline scores of the `chosen` clips with their
    probabilities through `calibration` (none: the identity), the calibration measures before
    and after, and the decisions and probabilities behind them (under "decisions" and
    "probabilities", which metrics.json leaves out)."""
    raw, frame = family.score(corpus, model, chosen, config)
    calibration = calibration or identity(len(corpus.accents))
    probs = calibration.apply(raw)
    clips = np.flatnonzero(chosen)
    fallback = corpus.speech_frames[clips] == 0
    pooled_frames = np.where(fallback, corpus.num_frames[clips], corpus.speech_frames[clips])
    truth, speakers = corpus.label[clips], corpus.speaker[clips]
    levels = clip_and_speaker_metrics(
        probs, pooled_frames, fallback, truth, speakers, corpus.accents, config.seed
    )
    levels["clip"]["calibration"] = before_and_after(raw, calibration, truth, speakers,
                                                     config.seed)  # fmt: skip
    levels["clip"]["log_loss"] = levels["clip"]["calibration"]["after"]["log_loss"]
    levels["clip"]["probabilities"] = (raw, probs)
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
    calibration = CalibrationMap.from_json(run_folder.calibration(facts), len(corpus.accents))
    metrics: dict[str, Any] = {
        "classes": corpus.classes,
        "model": config.model,
        "split": split_summary(corpus, split),
        **{key: facts.get(key) for key in ("class_weight", "epochs_run", "best_epoch",
                                           "seconds_per_epoch", "train_seconds")},
    }  # fmt: skip
    for side, mask in split.sides():
        if side != "test" or test:
            metrics[side] = side_metrics(corpus, family, model, mask, split.train, config,
                                         calibration)  # fmt: skip
    write_probabilities(run / run_folder.PROBABILITIES, corpus, split, metrics)
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


def write_probabilities(path: Path, corpus: Corpus, split: Split, metrics: dict[str, Any]
                        ) -> None:  # fmt: skip
    """Every scored clip's accent probabilities before ("raw:") and after ("calibrated:") the
    run's calibration map, per side, as probabilities.csv."""
    accents = corpus.accents
    rows = []
    for side, mask in split.sides():
        if side not in metrics:
            continue
        raw, calibrated = metrics[side]["clip"].pop("probabilities")
        for clip, before, after in zip(np.flatnonzero(mask), raw, calibrated, strict=True):
            rows.append((side, corpus.key[clip], corpus.speaker[clip],
                         accents[corpus.label[clip]], *before.tolist(), *after.tolist()))
    header = (*PROBABILITY_COLUMNS, *[f"raw:{accent}" for accent in accents],
              *[f"calibrated:{accent}" for accent in accents])  # fmt: skip
    with atomic.atomic_path(path) as temporary, open(temporary, "w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(header)
        writer.writerows(rows)


def read_probabilities(paths: Sequence[Path], side: str
                       ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The accents, and the raw and calibrated probabilities, accents and speakers of the `side`
    clips in the probabilities.csv files `paths` (the folds of a run), pooled."""
    rows: list[dict[str, str]] = []
    for path in paths:
        with open(path, newline="") as table:
            rows += [row for row in csv.DictReader(table) if row["side"] == side]
    accents = [name.removeprefix("raw:") for name in rows[0] if name.startswith("raw:")]
    raw = np.array([[float(row[f"raw:{a}"]) for a in accents] for row in rows])
    calibrated = np.array([[float(row[f"calibrated:{a}"]) for a in accents] for row in rows])
    truth = np.array([accents.index(row["accent"]) for row in rows])
    return accents, raw, calibrated, truth, np.array([row["speaker"] for row in rows])


def write_plots(run: Path, metrics: dict[str, Any]) -> None:
    """history.png from history.csv (families trained by epochs); the validation confusion
    matrices confusion_frame.png (frame-level families) and confusion_clip.png; the reliability
    diagram of the test clips (valid's, where there is no test side) as reliability.png."""
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
    side = "test" if "test" in metrics else "valid"
    plot_reliability(metrics[side]["clip"]["calibration"], f"{side} clips",
                     run / run_folder.RELIABILITY)  # fmt: skip


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
    side = "test" if "test" in metrics else "valid"
    lines.append(calibration_table(metrics[side]["clip"]["calibration"], f"{side} clips"))
    return "\n".join(lines)


def calibration_table(calibration: dict[str, Any], clips: str) -> str:
    """The calibration measures before and after the map, with their 95% intervals."""
    lines = [f"calibration of the {clips} ({calibration['before']['clips']}), before -> after "
             f"the {calibration['map']} map fitted on valid clips:"]
    for name, label in CALIBRATION:
        cells = []
        for when in ("before", "after"):
            low, high = calibration[when][f"{name}_interval"]
            cells.append(f"{calibration[when][name]:.3f} [{low:.2f}, {high:.2f}]")
        lines.append(f"  {label:28} {cells[0]:20} -> {cells[1]}")
    return "\n".join(lines)


def pooled_calibration(paths: Sequence[Path], seed: int) -> dict[str, Any]:
    """The calibration measures of the test clips of all folds together, before and after each
    fold's own map."""
    accents, raw, calibrated, truth, speakers = read_probabilities(paths, "test")
    return {
        "map": "fold's own",
        "before": calibration_scores(identity(len(accents)).apply(raw), truth, speakers, seed),
        "after": calibration_scores(calibrated, truth, speakers, seed),
    }


def fold_summary(folds: list[dict[str, Any]], decisions: Sequence[Path], seed: int
                 ) -> dict[str, Any]:  # fmt: skip
    """Each summary number per fold, with its mean and standard deviation, per side; and the
    test decisions of all folds pooled (every speaker is tested once) with their intervals,
    and their calibration (from each fold's probabilities.csv beside its decisions.csv)."""
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
    summary["test_pooled"]["calibration"] = pooled_calibration(
        [path.with_name(run_folder.PROBABILITIES) for path in decisions], seed)
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
    for level in ("clip", "speaker"):
        scores = summary["test_pooled"][level]
        low, high = scores["interval"]
        lines.append(f"test {level} balanced accuracy, all folds' {scores['count']} {level}s "
                     f"pooled: {scores['balanced_accuracy']:.3f} [{low:.2f}, {high:.2f}]")
    lines.append(calibration_table(summary["test_pooled"]["calibration"],
                                   f"test clips of all {folds} folds pooled"))
    return "\n".join(lines)


def evaluate(run: Path, caches: Sequence[Path] = ()) -> dict[str, Any]:
    """Re-score a finished run, on its own caches or on `caches` (same encoders required; a
    fused run's in the order it was fitted with)."""
    facts = run_folder.read_facts(run)
    return evaluate_run(run, load_fused(caches or run_folder.cache_directories(facts)))
