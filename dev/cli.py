"""The development verbs of `brogue`: `synthetic` (a demo corpus) and `bench NAME`."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from brogue.command import Command, positive_int

# name → (module with main(argv), what it measures)
BENCHMARKS = {
    "yamnet": ("brogue.dev.bench_yamnet", "native vs hub YAMNet on the same clips"),
    "extract": ("brogue.dev.bench_extract", "the whole extraction stage, hub vs native"),
    "train": ("brogue.dev.bench_train", "an epoch streamed from shards vs from memory"),
    "sweep": ("brogue.dev.bench_sweep", "a sweep trial on the cache vs recomputing YAMNet"),
    "shards": ("brogue.dev.bench_shards", "HDF5 layouts: read speed for training"),
    "ray": ("brogue.dev.bench_ray", "extraction on Ray Data in local mode vs the local executor"),
}


def _synthetic_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="new corpus folder")
    # Six speakers per accent leave three of each gender, so a held-out voice always
    # has a same-gender voice of its accent in training.
    parser.add_argument("--speakers", type=positive_int, default=6, help="speakers per accent")
    parser.add_argument("--clips", type=positive_int, default=8, help="clips per speaker")
    parser.add_argument("--seed", type=int, default=0)


def _synthetic(args: argparse.Namespace) -> int:
    from brogue.dev.synthetic_corpus import write_corpus

    write_corpus(args.root, args.speakers, args.clips, seed=args.seed)
    print(f"wrote a synthetic OpenSLR 83 corpus to {args.root}")
    return 0


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    listing = "; ".join(f"{name}: {about}" for name, (_, about) in BENCHMARKS.items())
    parser.add_argument("name", choices=BENCHMARKS, help=listing)
    parser.add_argument("options", nargs=argparse.REMAINDER,
                        help="the benchmark's own flags (brogue bench NAME --help)")  # fmt: skip


def _bench(args: argparse.Namespace) -> int:
    module, _ = BENCHMARKS[args.name]
    return importlib.import_module(module).main(args.options)


COMMANDS = {
    "synthetic": Command("write the espeak-ng demo corpus in the OpenSLR 83 layout",
                         _synthetic_arguments, _synthetic),
    "bench": Command("run a benchmark: " + ", ".join(BENCHMARKS), _bench_arguments, _bench),
}
