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
from brogue.inference import run_folder
from brogue.train.config import (
    CHOICES,
    EPOCH_SETTINGS,
    FAMILY_SETTINGS,
    TrainConfig,
    load_config,
    parse_layers,
)

DEFAULT_CACHE = Path("data/embeddings")
DEFAULT_RUNS = Path("data/runs")
DEFAULT_SWEEP = Path("data/sweep")


# `--help`'s groups of settings, each with its sentence; a setting in none is every family's.
EVERY_FAMILY = "every family"
BY_EPOCHS = "families trained by epochs (frame-dense, clip-attention)"
GROUPS = {
    EVERY_FAMILY: "settings every --model reads (they override --config; defaults: the Keras "
                    "example's, but a split by speaker)",
    BY_EPOCHS:
        "the Keras optimizer and early stopping on the valid speakers' AUC; clip-linear has no "
        "epochs and ignores them (clip-attention's own defaults: learning rate 1e-3, 16 clips "
        "a batch)",
    "frame-dense (the default --model)":
        "the Keras example's dense stack, trained on every frame alone; a clip's answer is its "
        "frames' probabilities averaged over its speech frames",
    "clip-linear": "each clip's mean and deviation over its speech frames, into a logistic "
                   "regression with an L2 penalty (scikit-learn)",
    "clip-attention": "each frame projected, then attentive statistics pooling over the clip's "
                      "speech frames and a softmax, trained on whole clips",
}
# Flags whose meaning "default X" does not tell.
HELP = {
    "model": "the model family; each one's own settings are grouped below",
    "split": "speaker: train, valid and test speakers apart; random: the example's file split, "
             "which leaks speakers into valid",
    "folds": "> 1: nested speaker folds, every speaker tested once",
    "class_weight": "example: each class weighted total/count as the Keras example does (large "
                    "numbers); balanced: total/(classes x count), scikit-learn's rule; both "
                    "from the training side's frame counts (clip counts for clip families)",
    "ram_budget_mb": "frames that fit are held in memory once; a larger side streams from the "
                     "shards",
    "block_frames": "rows read from a shard in one go when frames stream: large enough that "
                    "HDF5's per-call cost vanishes, small enough that blocks from many shards "
                    "mix in one shuffle window",
    "batch_size": "frames a batch for frame-dense, clips for clip-attention",
    "linear_c": "scikit-learn's C, the inverse of the L2 penalty's strength",
    "attention_width": "the frame projection's width",
    "attention_dropout": "dropout on the projection and on the pooled vector",
    "tensorboard": "TensorBoard logs in the run's logs/ (pip install 'brogue[tensorboard]')",
}


def _group_of(name: str) -> str:
    for family, names in FAMILY_SETTINGS.items():
        if name in names:
            return next(group for group in GROUPS if group.startswith(family))
    return BY_EPOCHS if name in EPOCH_SETTINGS else EVERY_FAMILY


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, named after it and grouped by the families that read it;
    unset flags leave the config file's value."""
    groups = {title: parser.add_argument_group(f"settings for {title}", sentence)
              for title, sentence in GROUPS.items()}  # fmt: skip
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        group = groups[_group_of(field.name)]
        said = HELP.get(field.name)
        if field.name == "layers":
            rows = ",".join(f"{width}:{dropout}" for width, dropout in field.default)
            group.add_argument(
                flag,
                type=parse_layers,
                metavar="W:D,...",
                help=f"hidden layers as width:dropout rows (default {rows})",
            )
        elif field.type == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction,
                               help=f"{said + '; ' if said else ''}default {field.default}")
        else:
            kind = {"int": int, "float": float, "str": str}[field.type]
            group.add_argument(flag, type=kind, choices=CHOICES.get(field.name),
                               help=f"{said + ' ' if said else ''}(default {field.default})")


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


def _check_caches(caches: list[Path]) -> None:
    """Refuse a cache that is not there before Keras and TensorFlow load (seconds), in one line."""
    from brogue.cache import Cache

    for cache in caches:
        Cache(cache)


def _fit(args: argparse.Namespace) -> int:
    caches = args.cache or [DEFAULT_CACHE]
    _check_caches(caches)
    config = _config_from(args)
    from brogue.train.fit import fit

    out = args.out or DEFAULT_RUNS / time.strftime("%Y%m%d-%H%M%S")
    fit(caches, out, config, index=args.index)
    print(f"run written to {out}")
    return 0


def _evaluate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a run folder written by fit")
    parser.add_argument("--cache", type=Path, action="append",
                        help="shard cache (default: the run's own); a fused run's caches in "
                        "the order it was fitted with")  # fmt: skip


def _evaluate(args: argparse.Namespace) -> int:
    run_folder.check_finished(args.run)
    _check_caches(args.cache or [])
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
    from brogue.train.config import OBJECTIVES, ConfigError

    caches = args.cache or [DEFAULT_CACHE]
    if len(caches) > 1:
        raise ConfigError(f"a sweep takes one --cache, not {len(caches)}: fuse caches with fit")
    _check_caches(caches)
    from brogue.train.sweep import DEFAULT_SPACE, load_space, sweep

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
         help="draw each file's figure as the Keras example does: its waveform, the log-mel "
         "the encoder heard (where it has one) and every class's probability frame by frame; "
         "for several files OUT-1.png, OUT-2.png, ... numbered by their place among FILE; "
         "each path written is printed on stderr")  # fmt: skip


def _plot_path(plot: Path, number: int, files: int) -> Path:
    return plot if files == 1 else plot.with_name(f"{plot.stem}-{number + 1}{plot.suffix}")


def _check_plot_path(plot: Path) -> None:
    """Refuse a --plot path matplotlib cannot write, before the run loads."""
    from matplotlib.figure import Figure

    from brogue.errors import BrogueError

    if plot.suffix[1:].lower() not in Figure().canvas.get_supported_filetypes():
        raise BrogueError(f"--plot {plot}: name a figure file, such as OUT.png, OUT.svg or OUT.pdf")
    if not plot.parent.is_dir():
        raise BrogueError(f"--plot {plot}: the folder {plot.parent} does not exist")


def _predict(args: argparse.Namespace) -> int:
    run_folder.check_finished(args.run)  # before Keras loads: a wrong path is told at once
    if args.plot:
        _check_plot_path(args.plot)
    import json

    from brogue.inference.evidence import RunEvidence
    from brogue.inference.predict import Unreadable, predict
    from brogue.inference.trained_run import load_encoders, load_run
    from brogue.train.prediction_plot import plot_prediction

    run = load_run(args.run)
    evidence = RunEvidence.load(args.run, len(run.accents))
    encoders = load_encoders(run)  # at the precisions of the caches the run was trained on
    failures = 0
    for answer in predict(run, encoders, args.files):
        if isinstance(answer, Unreadable):
            print(f"error: {answer.reason}", file=sys.stderr)
            failures += 1
            continue
        facts, seen = answer.to_json(), evidence.seen_in_training(Path(answer.path))
        if args.json:
            print(json.dumps({**facts, **evidence.claims(facts, seen)}))
        else:
            print("\n  ".join([answer.describe(), *evidence.describe(facts, seen)]))
        if args.plot:
            plot = _plot_path(args.plot, answer.number, len(args.files))
            plot_prediction(answer, plot)
            print(f"figure of {answer.path} written to {plot}", file=sys.stderr)
    if failures:
        print(f"error: {failures} of {len(args.files)} files could not be read",
              file=sys.stderr)
        return SOME_FAILED
    return 0


def _export_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a run folder written by fit (or a sweep's best/)")
    parser.add_argument("out", type=Path, help="new folder for the SavedModel")


def _export(args: argparse.Namespace) -> int:
    run_folder.check_finished(args.run)
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
