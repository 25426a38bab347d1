"""`python -m dev bench calibration RUN...`: other calibration maps on finished `fit --folds K`
runs, from their folds' probabilities.csv, beside the map each run shipped.

For each run it pools the test clips of all folds and scores, with speaker-bootstrap intervals
(`train.calibration.calibration_scores`):

- before: the folds' probabilities before calibration;
- shipped: each fold's own map, fitted on its own valid clips (what the run serves);
- pooled temperature: one temperature per fold fitted on the valid clips of every fold (each
  scored by its own fold's model), less the clips of that fold's test speakers, so that no
  fold's map sees its own test side;
- shrunk: the shipped map mixed with the uniform answer, the share fitted on the fold's valid
  clips (shrinkage toward the prior; accents-dev's folds are near balanced).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from brogue.inference.calibration import identity
from brogue.train.calibration import calibration_scores, fit_map
from brogue.train.evaluate import read_probabilities
from dev.machine import cpu_line

MEASURES = ("ece", "ece_if_calibrated", "brier", "log_loss", "mean_top_probability", "accuracy")


def _shrunk(calibrated: np.ndarray, valid: np.ndarray, truth: np.ndarray) -> float:
    accents = valid.shape[1]

    def loss(share: float) -> float:
        mixed = (1 - share) * valid + share / accents
        return float(-np.log(mixed[np.arange(len(truth)), truth]).mean())

    return float(minimize_scalar(loss, bounds=(0.0, 1.0), method="bounded").x)


def study(run: Path, seed: int) -> dict[str, dict[str, float | list[float]]]:
    folds = sorted(run.glob("fold-*"))
    sides = {fold: {side: read_probabilities([fold / "probabilities.csv"], side)
                    for side in ("valid", "test")} for fold in folds}  # fmt: skip
    answers: dict[str, list[np.ndarray]] = {"before": [], "shipped": [], "pooled temperature": [],
                                            "shrunk": []}  # fmt: skip
    for fold in folds:
        _, valid_raw, valid_after, valid_truth, _ = sides[fold]["valid"]
        accents, raw, after, _, speakers = sides[fold]["test"]
        pool = [sides[other]["valid"] for other in folds]
        keep = [~np.isin(side[4], speakers) for side in pool]
        pooled = fit_map(np.concatenate([side[1][k] for side, k in zip(pool, keep, strict=True)]),
                         np.concatenate([side[3][k] for side, k in zip(pool, keep, strict=True)]),
                         "temperature")  # fmt: skip
        share = _shrunk(after, valid_after, valid_truth)
        answers["before"].append(identity(len(accents)).apply(raw))
        answers["shipped"].append(after)
        answers["pooled temperature"].append(pooled.apply(raw))
        answers["shrunk"].append((1 - share) * after + share / len(accents))
    truth = np.concatenate([sides[fold]["test"][3] for fold in folds])
    speakers = np.concatenate([sides[fold]["test"][4] for fold in folds])
    table = {}
    for name, parts in answers.items():
        scores = calibration_scores(np.concatenate(parts), truth, speakers, seed)
        table[name] = {key: scores[key] for measure in MEASURES
                       for key in (measure, f"{measure}_interval")}  # fmt: skip
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dev bench calibration", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run folders of fit --folds K")
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args(argv)
    print(cpu_line())
    result = {}
    for run in args.runs:
        result[run.name] = study(run, args.seed)
        print(f"\n{run} (test clips of all folds pooled; [95% interval, resampling speakers])")
        print(f"{'map':20} " + " ".join(f"{m:22}" for m in MEASURES))
        for name, scores in result[run.name].items():
            cells = [f"{scores[m]:.3f} [{scores[m + '_interval'][0]:.2f}, "
                     f"{scores[m + '_interval'][1]:.2f}]" for m in MEASURES]
            print(f"{name:20} " + " ".join(f"{cell:22}" for cell in cells))
    print("RESULT " + json.dumps(result))
