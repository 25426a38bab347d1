"""`python -m dev bench calibration-crossfit CACHE...`: a temperature fitted on ten times the
clips, against the one each fold fits on its own valid speakers.

For each fold of `fit --folds 5 --model clip-linear` (the same splits and settings as `fit`),
the fold's non-test speakers are split again into `--inner` speaker folds; a model trained on
each inner fold's rest scores its held-out speakers, so every non-test clip gets an answer from
a model that never heard its speaker (scikit-learn's `CalibratedClassifierCV(ensemble=False)`
does the same). One temperature fitted on those answers is then applied to the fold's model,
beside the temperature fitted on the fold's valid clips (what `fit` ships). The test clips of
all folds are pooled and scored as `fit` scores them (`train.calibration.calibration_scores`).
The question it answers: is the shipped map's ECE a matter of its few valid clips?
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np

from brogue.inference.calibration import identity
from brogue.train.calibration import calibration_scores, fit_map
from brogue.train.config import TrainConfig
from brogue.train.families import FAMILIES
from brogue.train.fusion import load_fused
from brogue.train.splits import make_splits, speaker_folds
from dev.machine import cpu_line

MEASURES = ("ece", "ece_if_calibrated", "log_loss", "mean_top_probability", "accuracy")
MAPS = ("before", "valid temperature", "cross-fitted temperature")


def study(cache: Path, inner: int, linear_c: float, seed: int) -> dict:
    config = dataclasses.replace(TrainConfig(), model="clip-linear", folds=5, linear_c=linear_c,
                                 seed=seed)  # fmt: skip
    corpus = load_fused(cache)
    family = FAMILIES[config.model]
    scratch = Path(tempfile.mkdtemp(prefix="crossfit-"))
    answers: dict[str, list[np.ndarray]] = {name: [] for name in MAPS}
    temperatures: dict[str, list[float]] = {"valid": [], "cross-fitted": []}
    tested = []
    for split in make_splits(corpus, config, None):
        model, _ = family.train(corpus, split, config, scratch, 0, None)
        test, _ = family.score(corpus, model, split.test, config)
        valid, _ = family.score(corpus, model, split.valid, config)
        rest = ~split.test
        kept = set(corpus.speaker[rest].tolist())
        labels = {speaker: accent for speaker, accent in corpus.speaker_labels().items()
                  if speaker in kept}  # fmt: skip
        held_answers = np.zeros((len(corpus.label), test.shape[1]))
        for held_speakers in speaker_folds(labels, inner, seed + split.fold):
            held = np.isin(corpus.speaker, held_speakers) & rest
            inner_split = dataclasses.replace(split, train=rest & ~held, valid=held,
                                              test=np.zeros_like(held))  # fmt: skip
            inner_model, _ = family.train(corpus, inner_split, config, scratch, 0, None)
            held_answers[held] = family.score(corpus, inner_model, held, config)[0]
        shipped = fit_map(valid, corpus.label[split.valid], "temperature")
        crossed = fit_map(held_answers[rest], corpus.label[rest], "temperature")
        temperatures["valid"].append(1 / shipped.scale[0])
        temperatures["cross-fitted"].append(1 / crossed.scale[0])
        answers["before"].append(identity(test.shape[1]).apply(test))
        answers["valid temperature"].append(shipped.apply(test))
        answers["cross-fitted temperature"].append(crossed.apply(test))
        tested.append(split.test)
    order = [np.flatnonzero(mask) for mask in tested]
    truth = np.concatenate([corpus.label[rows] for rows in order])
    speakers = np.concatenate([corpus.speaker[rows] for rows in order])
    table = {}
    for name, parts in answers.items():
        scores = calibration_scores(np.concatenate(parts), truth, speakers, seed)
        table[name] = {key: scores[key] for measure in MEASURES
                       for key in (measure, f"{measure}_interval")}  # fmt: skip
    return {"temperatures": temperatures, "maps": table}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dev bench calibration-crossfit",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("caches", type=Path, nargs="+", help="cache folders (one encoder each)")
    parser.add_argument("--inner", type=int, default=4, help="inner speaker folds (default 4)")
    parser.add_argument("--linear-c", type=float, default=TrainConfig().linear_c)
    parser.add_argument("--seed", type=int, default=TrainConfig().seed)
    args = parser.parse_args(argv)
    print(cpu_line())
    result = {}
    for cache in args.caches:
        result[cache.name] = study(cache, args.inner, args.linear_c, args.seed)
        print(f"\n{cache}: clip-linear, C {args.linear_c:g}, 5 folds, {args.inner} inner folds")
        for kind, values in result[cache.name]["temperatures"].items():
            print(f"  {kind} temperatures: " + ", ".join(f"{t:.1f}" for t in values))
        print(f"{'map':26} " + " ".join(f"{m:22}" for m in MEASURES))
        for name, scores in result[cache.name]["maps"].items():
            cells = [f"{scores[m]:.3f} [{scores[m + '_interval'][0]:.2f}, "
                     f"{scores[m + '_interval'][1]:.2f}]" for m in MEASURES]
            print(f"{name:26} " + " ".join(f"{cell:22}" for cell in cells))
    print("RESULT " + json.dumps(result))
