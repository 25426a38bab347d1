"""`fit`: train one model family on one split of a cache (or on each of K nested folds).

A run folder holds everything needed to judge and reuse the run, whatever the family; its
layout is `brogue.inference.run_folder`'s: config.json, split.json, run.json (with the
calibration map fitted on the valid clips, `train.calibration`), model.keras, metrics.json,
decisions.csv, probabilities.csv and the PNG plots written by `train.evaluate`; Keras families
add history.csv and logs/ (TensorBoard).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras

from brogue import atomic
from brogue.inference import run_folder
from brogue.inference.run_folder import RunError
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


def fit_split(
    corpus: Corpus, split: Split, config: TrainConfig, run: Path, verbose: int,
    on_valid: ValidHook | None = None, test: bool = True,
) -> dict:
    """Train on one split into `run`, evaluate, and return the metrics."""
    run.mkdir(parents=True, exist_ok=True)
    save_config(config, run / run_folder.CONFIG)
    atomic.write_text(run / run_folder.SPLIT, json.dumps(split.to_json(corpus), indent=1) + "\n")
    family = FAMILIES[config.model]

    def on_epoch(epoch: int, model: keras.Model) -> None:
        on_valid(epoch, side_metrics(corpus, family, model, split.valid, split.train, config))

    started = time.perf_counter()
    model, trained = family.train(corpus, split, config, run, verbose,
                                  None if on_valid is None else on_epoch)  # fmt: skip
    valid, _ = family.score(corpus, model, split.valid, config)
    calibration = fit_map(valid, corpus.label[split.valid], config.calibration)
    caches = [run_folder.cache_section(stream.cache.directory, stream.cache.encoder)
              for stream in corpus.streams]  # fmt: skip
    facts = {
        "model": config.model,
        "classes": corpus.classes,
        "cache": run_folder.caches_section(caches),
        **trained,
        "calibration": {**calibration.to_json(), "fitted_on": "valid",
                        "clips": int(split.valid.sum())},
        "train_seconds": round(time.perf_counter() - started, 3),
    }
    run_folder.write_facts(run, facts)
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
    folds = [fit_split(corpus, split, config, run_folder.fold(out, split.fold), verbose, on_valid,
                       test) for split in splits]  # fmt: skip
    decisions = [run_folder.fold(out, split.fold) / run_folder.DECISIONS for split in splits]
    summary = fold_summary(folds, decisions, config.seed)
    save_config(config, out / run_folder.CONFIG)
    atomic.write_text(out / run_folder.METRICS, json.dumps(summary, indent=1) + "\n")
    plot_reliability(summary["test_pooled"]["calibration"], "test clips of all folds",
                     out / run_folder.RELIABILITY)  # fmt: skip
    print(fold_table(summary))
    return summary
