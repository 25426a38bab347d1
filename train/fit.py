"""`fit`: train one model family on one split of a cache (or on each of K nested folds).

A run folder holds everything needed to judge and reuse the run, whatever the family:
config.json (the settings actually used), split.json (who trained, validated and tested),
run.json (family, classes, cache identity, class weights, epochs, the calibration map fitted on
the valid clips, timing; a fused run lists its other caches under cache.fused, in stream order),
model.keras (the family's model; the serving head adds the calibration map),
metrics.json, decisions.csv and the PNG plots written by `train.evaluate`; Keras families add
history.csv and logs/ (TensorBoard).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras

from brogue import atomic
from brogue.errors import BrogueError
from brogue.train.calibration import fit_map
from brogue.train.config import TrainConfig, save_config
from brogue.train.dataset import Corpus
from brogue.train.evaluate import evaluate_run, fold_summary, fold_table, side_metrics
from brogue.train.families import FAMILIES, check_fusion
from brogue.train.fusion import load_fused
from brogue.train.plots import plot_reliability
from brogue.train.splits import Split, make_splits

# Called after each epoch of a Keras family with the epoch and the valid side's metrics.
ValidHook = Callable[[int, dict[str, Any]], None]


class RunError(BrogueError):
    """A run folder cannot be written or read; the message is one line."""


def fit_split(
    corpus: Corpus, split: Split, config: TrainConfig, run: Path, verbose: int,
    on_valid: ValidHook | None = None, test: bool = True,
) -> dict:
    """Train on one split into `run`, evaluate, and return the metrics."""
    run.mkdir(parents=True, exist_ok=True)
    save_config(config, run / "config.json")
    atomic.write_text(run / "split.json", json.dumps(split.to_json(corpus), indent=1) + "\n")
    family = FAMILIES[config.model]

    def on_epoch(epoch: int, model: keras.Model) -> None:
        on_valid(epoch, side_metrics(corpus, family, model, split.valid, split.train, config))

    started = time.perf_counter()
    model, trained = family.train(corpus, split, config, run, verbose,
                                  None if on_valid is None else on_epoch)  # fmt: skip
    valid, _ = family.score(corpus, model, split.valid, config)
    calibration = fit_map(valid, corpus.label[split.valid], config.calibration)
    caches = [{"directory": str(stream.cache.directory.absolute()),
               "encoder": dataclasses.asdict(stream.cache.encoder)} for stream in corpus.streams]
    facts = {
        "model": config.model,
        "classes": corpus.classes,
        "cache": {**caches[0], **({"fused": caches[1:]} if corpus.fused else {})},
        **trained,
        "calibration": {**calibration.to_json(), "fitted_on": "valid",
                        "clips": int(split.valid.sum())},
        "train_seconds": round(time.perf_counter() - started, 3),
    }
    atomic.write_text(run / "run.json", json.dumps(facts, indent=1) + "\n")
    return evaluate_run(run, corpus, model=model, test=test)


def fit(
    cache: Path | Sequence[Path], out: Path, config: TrainConfig, index: Path | None = None,
    verbose: int | None = None, on_valid: ValidHook | None = None, test: bool = True,
) -> dict[str, Any]:
    """Train as `config` says on the cache in `cache` (several: fused, `train.fusion`), into
    the new run folder `out`.

    With `config.folds` > 1 each fold trains into `out/fold-<k>`, and `out/metrics.json`
    summarises the folds. `verbose` is Keras's; by default a progress bar on a terminal,
    and one line per epoch in a log, where a bar would write thousands of updates.
    `on_valid` and `test=False` are for sweeps: a trial's valid score after each epoch, and
    no test score until a trial has been chosen.
    """
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    if out.exists() and any(out.iterdir()):
        raise RunError(f"{out} already holds files; choose a new --out")
    check_fusion(config.model, 1 if isinstance(cache, Path) else len(cache))
    corpus = load_fused(cache)
    splits = make_splits(corpus, config, index)
    if len(splits) == 1:
        return fit_split(corpus, splits[0], config, out, verbose, on_valid, test)
    folds = [fit_split(corpus, split, config, out / f"fold-{split.fold}", verbose, on_valid, test)
             for split in splits]  # fmt: skip
    decisions = [out / f"fold-{split.fold}" / "decisions.csv" for split in splits]
    summary = fold_summary(folds, decisions, config.seed)
    save_config(config, out / "config.json")
    atomic.write_text(out / "metrics.json", json.dumps(summary, indent=1) + "\n")
    plot_reliability(summary["test_pooled"]["calibration"], "test clips of all folds",
                     out / "reliability.png")  # fmt: skip
    print(fold_table(summary))
    return summary
