"""The trainer's verbs of `brogue`: fit, evaluate, sweep, predict and export.

Each verb is one entry in COMMANDS: a function adding its flags and a function running it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from brogue.command import Command
from brogue.errors import SOME_FAILED
from brogue.train.config import CHOICES, TrainConfig, load_config, parse_layers

DEFAULT_CACHE = Path("data/embeddings")
DEFAULT_RUNS = Path("data/runs")
DEFAULT_SWEEP = Path("data/sweep")


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, named after it; unset flags leave the config file's value."""
    group = parser.add_argument_group("settings (override --config; defaults: the Keras example)")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.name == "layers":
            rows = ",".join(f"{width}:{dropout}" for width, dropout in field.default)
            group.add_argument(
                flag,
                type=parse_layers,
                metavar="W:D,...",
                help=f"hidden layers as width:dropout rows (default {rows})",
            )
        elif field.type == "bool":
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, help=f"default {field.default}"
            )
        else:
            kind = {"int": int, "float": float, "str": str}[field.type]
            group.add_argument(flag, type=kind, choices=CHOICES.get(field.name),
                               help=f"default {field.default}")  # fmt: skip


def _config_from(args: argparse.Namespace) -> TrainConfig:
    names = [field.name for field in dataclasses.fields(TrainConfig)]
    overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return load_config(args.config, overrides)


def _fit_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache",
        type=Path,
        action="append",
        help=f"shard cache folder (default {DEFAULT_CACHE}); give it again to fuse caches of "
        "the same clips by other encoders (clip-level families)",
    )
    parser.add_argument(
        "--out", type=Path, help=f"new run folder (default {DEFAULT_RUNS}/<date-time>)"
    )
    parser.add_argument("--config", type=Path, help="JSON file of settings")
    parser.add_argument(
        "--index",
        type=Path,
        help="OpenSLR 83 line_index_all.csv: with --split random, the example's "
        "own row order, so the split is the example's file for file",
    )
    _add_config_flags(parser)  # fmt: skip


def _fit(args: argparse.Namespace) -> int:
    from brogue.train.fit import fit

    out = args.out or DEFAULT_RUNS / time.strftime("%Y%m%d-%H%M%S")
    fit(args.cache or [DEFAULT_CACHE], out, _config_from(args), index=args.index)
    print(f"run written to {out}")
    return 0


def _evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a run folder written by fit")
    parser.add_argument("--cache", type=Path, action="append",
                        help="shard cache (default: the run's own); a fused run's caches in "
                        "the order it was fitted with")  # fmt: skip


def _evaluate(args: argparse.Namespace) -> int:
    from brogue.train.evaluate import evaluate

    evaluate(args.run, args.cache or ())
    print(f"metrics and plots written to {args.run}")
    return 0


def _sweep_flags(parser: argparse.ArgumentParser) -> None:
    from brogue.train.config import DEFAULT_JOBS, DEFAULT_OBJECTIVE, DEFAULT_TRIALS, OBJECTIVES

    flag = parser.add_argument
    flag("--cache", type=Path, action="append",
         help=f"default {DEFAULT_CACHE}; a sweep takes one cache, not fused ones")  # fmt: skip
    flag("--out", type=Path, default=DEFAULT_SWEEP, help=f"sweep folder, resumed if it holds "
         f"this sweep (default {DEFAULT_SWEEP})")  # fmt: skip
    flag("--space", type=Path, help="JSON search space (default train/sweep_space.json)")
    flag("--trials", type=int, default=DEFAULT_TRIALS,
         help=f"trials in all, finished ones included (default {DEFAULT_TRIALS})")  # fmt: skip
    flag("--objective", choices=sorted(OBJECTIVES), default=DEFAULT_OBJECTIVE,
         help=f"validation score to optimise: log_loss is minimised, the others maximised "
              f"(default {DEFAULT_OBJECTIVE})")  # fmt: skip
    flag("--jobs", type=int, default=DEFAULT_JOBS,
         help=f"worker processes running trials of the study (default {DEFAULT_JOBS})")  # fmt: skip
    flag("--storage", metavar="URL", help="the Optuna study's database, e.g. postgresql://... "
         "for several machines (default sqlite in the sweep folder)")  # fmt: skip
    flag("--config", type=Path, help="JSON file of the settings every trial shares")
    flag("--index", type=Path, help="as for fit, with --split random")
    _add_config_flags(parser)


def _sweep(args: argparse.Namespace) -> int:
    from brogue.train.config import OBJECTIVES
    from brogue.train.sweep import DEFAULT_SPACE, SweepError, load_space, sweep

    caches = args.cache or [DEFAULT_CACHE]
    if len(caches) > 1:
        raise SweepError(f"a sweep takes one --cache, not {len(caches)}: fuse caches with fit")
    space = load_space(args.space or DEFAULT_SPACE)
    best = sweep(caches[0], args.out, _config_from(args), space, args.trials, args.objective,
                 args.jobs, args.index, args.storage)  # fmt: skip
    level, name = OBJECTIVES[args.objective]
    valid, test = best["metrics"]["valid"][level], best["metrics"]["test"][level]
    interval = test.get("interval") if name == "balanced_accuracy" else None
    shown = "" if interval is None else f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    print(f"best: trial {best['trial']} ({best['metrics']['model']}, {best['settings']}): "
          f"valid {args.objective} {valid[name]:.4f}; test {test[name]:.4f}{shown}, scored "
          f"once, after the choice; table in {args.out / 'trials.csv'}, run folder in "
          f"{args.out / 'best'}")  # fmt: skip
    return 0


def _predict_flags(parser: argparse.ArgumentParser) -> None:
    flag = parser.add_argument
    flag("run", type=Path, help="a run folder written by fit (or a sweep's best/)")
    flag("files", type=Path, nargs="+", metavar="FILE",
         help="audio files: wav, flac, ogg, mp3, ...; any rate, mono or stereo")  # fmt: skip
    flag("--json", action="store_true",
         help="one JSON object per file and line, with per-frame probabilities")  # fmt: skip
    flag("--plot", type=Path, metavar="OUT.png",
         help="the example's figure; for several files OUT-1.png, OUT-2.png, ...")  # fmt: skip


def _predict(args: argparse.Namespace) -> int:
    import json

    from brogue.train.evidence import RunEvidence
    from brogue.train.predict import load_encoders, load_run, predict_files
    from brogue.train.prediction_plot import plot_prediction

    run = load_run(args.run)
    evidence = RunEvidence.load(args.run, len(run.accents))
    encoders = load_encoders(run)  # at the precisions of the caches the run was trained on
    failures: list[str] = []
    for prediction in predict_files(run, encoders, args.files, failures):
        answer, seen = prediction.to_json(), evidence.seen_in_training(Path(prediction.path))
        if args.json:
            print(json.dumps({**answer, **evidence.claims(answer, seen)}))
        else:
            print("\n  ".join([prediction.describe(), *evidence.describe(answer, seen)]))
        if args.plot:
            plot = args.plot
            if len(args.files) > 1:
                plot = plot.with_name(f"{plot.stem}-{prediction.number + 1}{plot.suffix}")
            plot_prediction(prediction, plot)
    if failures:
        print(f"error: {len(failures)} of {len(args.files)} files could not be read",
              file=sys.stderr)
        return SOME_FAILED
    return 0


def _export_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a run folder written by fit (or a sweep's best/)")
    parser.add_argument("out", type=Path, help="new folder for the SavedModel")


def _export(args: argparse.Namespace) -> int:
    from brogue.train.export import export

    export(args.run, args.out)
    print(f"SavedModel written to {args.out}: waveform [samples] at 16 kHz -> probabilities")
    return 0


COMMANDS = {
    "fit": Command("train a classifier on a shard cache", _fit_flags, _fit),
    "evaluate": Command("score a finished run, write metrics.json and plots",
                        _evaluate_flags, _evaluate),
    "sweep": Command("search the model families and their settings with Optuna, each trial a "
                     "fit", _sweep_flags, _sweep),
    "predict": Command("the accent of audio files, by a run's encoder and head",
                       _predict_flags, _predict),
    "export": Command("one SavedModel from a 16 kHz waveform to accents", _export_flags, _export),
}
