"""`fit`: train the classifier on one split of a cache (or each of K folds) into a run folder.

A run folder holds everything needed to judge and reuse the run: config.json (the settings
actually used), split.json (who trained, who validated), run.json (classes, cache identity,
class weights, epochs, timing), model.keras (the best epoch by validation AUC), history.csv,
logs/ (TensorBoard), metrics.json and the PNG plots written by `train.evaluate`.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from brogue.errors import BrogueError
from brogue.train.config import TrainConfig, save_config
from brogue.train.corpus import Corpus, load_corpus
from brogue.train.evaluate import evaluate_run, fold_summary, fold_table
from brogue.train.model import build_model
from brogue.train.splits import Split, make_splits
from brogue.train.stream import FrameFeed
from brogue.train.weights import class_weights, frame_counts

MONITOR = "val_auc"  # The example judged models by AUC; early stopping and checkpoint agree.


class RunError(BrogueError):
    """A run folder cannot be written or read; the message is one line."""


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of each epoch, validation included."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def _describe(feed: FrameFeed, side: str) -> str:
    if feed.resident:
        return f"{side}: {feed.frames} frames fit the RAM budget, loaded once"
    return f"{side}: {feed.frames} frames streamed from shards, windows of {feed.window_frames}"


def _callbacks(run: Path, config: TrainConfig, timer: EpochTimer) -> list:
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor=MONITOR, mode="max", patience=config.patience, restore_best_weights=True
        ),
        keras.callbacks.ModelCheckpoint(
            run / "model.keras", monitor=MONITOR, mode="max", save_best_only=True
        ),
        keras.callbacks.CSVLogger(run / "history.csv"),
        timer,
    ]
    if config.tensorboard:
        # TensorFlow no longer pulls in the tensorboard package, and Keras needs it to log.
        if importlib.util.find_spec("tensorboard") is None:
            warnings.warn("no TensorBoard logs: pip install 'brogue[tensorboard]', "
                          "or --no-tensorboard", stacklevel=2)
        else:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=run / "logs"))
    return callbacks


def fit_split(corpus: Corpus, split: Split, config: TrainConfig, run: Path, verbose: int) -> dict:
    """Train on one split into `run`, evaluate, and return the metrics."""
    run.mkdir(parents=True, exist_ok=True)
    save_config(config, run / "config.json")
    (run / "split.json").write_text(json.dumps(split.to_json(corpus), indent=1) + "\n")
    counts = frame_counts(
        corpus.label[split.train], corpus.num_frames[split.train],
        corpus.speech_frames[split.train], len(corpus.classes),
    )  # fmt: skip
    weights = class_weights(counts, config.class_weight)
    # Both feeds live through the fit, so they share the budget in proportion to their frames.
    frames = corpus.num_frames
    valid_share = frames[split.valid].sum() / frames[split.train | split.valid].sum()
    valid_budget = int(config.ram_budget_bytes * valid_share)
    train_feed = corpus.feed(
        split.train, config, config.ram_budget_bytes - valid_budget, shuffle=True,
        class_weight=weights,
    )  # fmt: skip
    valid_feed = corpus.feed(split.valid, config, valid_budget, shuffle=False)
    print(_describe(train_feed, "train"))
    print(_describe(valid_feed, "valid"))
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, len(corpus.classes))
    timer = EpochTimer()
    # The feed shuffles and weights frames itself: Keras shuffling batch order on top would
    # make every batch hit a different window, so shuffle=False and no class_weight here.
    history = model.fit(
        train_feed, validation_data=valid_feed, epochs=config.epochs, shuffle=False,
        callbacks=_callbacks(run, config, timer), verbose=verbose,
    )  # fmt: skip
    facts = {
        "classes": corpus.classes,
        "cache": {
            "directory": str(corpus.cache.directory.absolute()),
            "handle": corpus.cache.handle,
            "fingerprint": corpus.cache.fingerprint,
            "precision": corpus.cache.precision,
        },
        "class_counts": dict(zip(corpus.classes, counts.tolist(), strict=True)),
        "class_weight": dict(zip(corpus.classes, weights.tolist(), strict=True)),
        "epochs_run": len(history.epoch),
        "best_epoch": int(np.argmax(history.history[MONITOR])) + 1,
        "seconds_per_epoch": float(np.mean(timer.seconds)),
        "feed": {"train": _describe(train_feed, "train"), "valid": _describe(valid_feed, "valid")},
    }
    (run / "run.json").write_text(json.dumps(facts, indent=1) + "\n")
    return evaluate_run(run, corpus, model=model)


def fit(
    cache: Path, out: Path, config: TrainConfig, index: Path | None = None,
    verbose: int | None = None,
) -> dict[str, Any]:
    """Train as `config` says on the cache in `cache`, into the new run folder `out`.

    With `config.folds` > 1 each fold trains into `out/fold-<k>`, and `out/metrics.json`
    summarises the folds. `verbose` is Keras's; by default a progress bar on a terminal,
    and one line per epoch in a log, where a bar would write thousands of updates.
    """
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    if out.exists() and any(out.iterdir()):
        raise RunError(f"{out} already holds files; choose a new --out")
    corpus = load_corpus(cache)
    splits = make_splits(corpus, config, index)
    if len(splits) == 1:
        return fit_split(corpus, splits[0], config, out, verbose)
    folds = [
        fit_split(corpus, split, config, out / f"fold-{split.fold}", verbose) for split in splits
    ]
    summary = fold_summary(folds)
    save_config(config, out / "config.json")
    (out / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(fold_table(summary))
    return summary
