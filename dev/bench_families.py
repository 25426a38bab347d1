"""`make bench-families`: the model families on a weak-cue synthetic cache, and a sweep.

1. Each family with its defaults (frame-dense is the example's head), by nested speaker folds
   (default 4): test clip balanced accuracy as mean ± std over folds, and all folds' test clips
   pooled (every speaker tested once) with the speaker-bootstrap 95% interval; training
   seconds per fold.
2. A sweep of `--trials` trials over the default space on the three-way split: seconds per
   trial of each family, and the best trial's test score against the example's head on the
   same split.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from brogue.inference import run_folder
from brogue.train.config import MODELS, make_config
from brogue.train.fit import fit
from brogue.train.sweep import DEFAULT_SPACE, load_space, sweep
from dev.synthetic_cache import WEAK_CUE, write_synthetic_cache


def _quietly(function, *args, **kwargs):
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def _score(side: dict) -> str:
    low, high = side["clip"]["interval"]
    return f"{side['clip']['balanced_accuracy']:.3f} [{low:.3f}, {high:.3f}]"


def families_by_folds(cache: Path, folder: Path, folds: int) -> None:
    print(f"nested {folds}-fold CV, test clip balanced accuracy (chance 1/6):")
    print(f"{'family':16} {'mean ± std over folds':22} {'pooled [95% interval]':26} "
          f"{'train s/fold':>12} {'train clip acc':>14}")  # fmt: skip
    for family in MODELS:
        out = folder / family
        config = make_config({"model": family, "folds": folds, "tensorboard": False})
        summary = _quietly(fit, cache, out, config, verbose=0)
        test = summary["test"]["clip"]["balanced_accuracy"]
        pooled = summary["test_pooled"]["clip"]
        low, high = pooled["interval"]
        seconds = [run_folder.read_facts(run_folder.fold(out, k))["train_seconds"]
                   for k in range(1, folds + 1)]  # fmt: skip
        print(f"{family:16} {test['mean']:.3f} ± {test['std']:.3f}          "
              f"{pooled['balanced_accuracy']:.3f} [{low:.3f}, {high:.3f}]     "
              f"{np.mean(seconds):12.1f} {summary['train']['clip']['accuracy']['mean']:14.2f}",
              flush=True)  # fmt: skip


def sweep_against_the_example(cache: Path, folder: Path, trials: int) -> None:
    base = make_config({"tensorboard": False})
    started = time.perf_counter()
    best = sweep(cache, folder / "sweep", base, load_space(DEFAULT_SPACE), trials=trials)
    elapsed = time.perf_counter() - started
    with open(folder / "sweep" / "trials.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    print(f"\nsweep of {trials} trials in {elapsed:.0f} s, seconds per trial:")
    for family in MODELS:
        seconds = [float(row["seconds"]) for row in rows if row["model"] == family
                   and row["state"] in ("complete", "pruned")]  # fmt: skip
        pruned = sum(row["state"] == "pruned" for row in rows if row["model"] == family)
        if seconds:
            print(f"{family:16} {np.mean(seconds):7.1f} s over {len(seconds)} trials "
                  f"({pruned} pruned)")  # fmt: skip
    example = _quietly(fit, cache, folder / "example", base, verbose=0)
    metrics = best["metrics"]
    print("\nsame three-way split, clip balanced accuracy  valid | test [95% interval]:")
    print(f"sweep's best (trial {best['trial']}, {metrics['model']}, {best['settings']}): "
          f"{metrics['valid']['clip']['balanced_accuracy']:.3f} | {_score(metrics['test'])}")
    print(f"the example's head (frame-dense, defaults): "
          f"{example['valid']['clip']['balanced_accuracy']:.3f} | {_score(example['test'])}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-families",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--folds", type=int, default=4, help="outer folds (default 4)")
    parser.add_argument("--trials", type=int, default=12, help="sweep trials (default 12)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        cache = write_synthetic_cache(folder / "cache", WEAK_CUE, seed=0)
        speakers = sum(WEAK_CUE.speakers)
        print(f"weak-cue cache: {len(WEAK_CUE.accents)} accents, {speakers} speakers, "
              f"{speakers * WEAK_CUE.clips_per_speaker} clips")  # fmt: skip
        families_by_folds(cache, folder, args.folds)
        sweep_against_the_example(cache, folder, args.trials)
    return 0
