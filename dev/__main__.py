"""Development verbs, from a clone only (`python -m dev VERB`, or `make synthetic`, `make bench-*`,
`make stress`): `synthetic` (a demo corpus), `bench NAME` and `stress`. They are not in the wheel,
so users' `brogue --help` lists users' verbs."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from brogue.command import Command, positive_int
from dev.synthetic_corpus import SPEAKING_VOICES, write_corpus

# name → (module with main(argv), what it measures)
BENCHMARKS = {
    "yamnet": ("dev.bench_yamnet", "hub vs native YAMNet in every runtime x precision"),
    "encoders": ("dev.bench_encoders", "every encoder on one accented corpus: speed, size, "
                 "held-out-speaker accuracy"),
    "whisper": ("dev.bench_whisper", "the whisper: encoders' extraction stage, beside "
                "ctranslate2's own encode"),
    "whisper-study": ("dev.whisper_study", "Whisper's window (the clip alone or 30 s) and layer, "
                      "by held-out-speaker accuracy and speed"),
    "network-runtimes": ("dev.network_runtimes", "YAMNet's network alone on OpenVINO, LiteRT, "
                         "onnxruntime and torch, fp32 and bf16"),
    "ge2e": ("dev.bench_ge2e", "the GE2E encoder in every runtime x precision, and vs torch"),
    "extract": ("dev.bench_extract", "extraction stage, hub vs every runtime x precision"),
    "train": ("dev.bench_train", "an epoch streamed from shards vs from memory"),
    "sweep": ("dev.bench_sweep", "a sweep trial on the cache vs recomputing YAMNet"),
    "shards": ("dev.bench_shards", "HDF5 layouts: read speed for training"),
    "families": ("dev.bench_families", "the model families by nested CV, and a sweep"),
    "serve": ("dev.bench_serve", "brogue serve on loopback: req/s and latency at 1, 4 and 16 "
              "clients, bursts"),
    "vad": ("dev.bench_vad", "speech rules (Silero VAD, webrtcvad, energy) vs YAMNet's"),
    "ray": ("dev.bench_ray", "extraction on Ray Data in local mode vs the local executor"),
    "memory": ("dev.memory", "peak memory of extracting a 3 h and a 6 h recording, per encoder"),
    "calibration": ("dev.bench_calibration", "other calibration maps on finished fit --folds runs, "
                    "beside the one each shipped"),
    "calibration-crossfit": ("dev.calibration_crossfit", "clip-linear's temperature fitted on "
                             "cross-fitted answers of all non-test speakers vs on valid clips"),
}


def _synthetic_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="new corpus folder")
    # Six speakers per accent leave three of each gender, so a held-out voice always
    # has a same-gender voice of its accent in training.
    parser.add_argument("--speakers", type=positive_int, default=6, help="speakers per accent")
    parser.add_argument("--clips", type=positive_int, default=8, help="clips per speaker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voice", choices=SPEAKING_VOICES, default="espeak",
                        help="espeak-ng speech, or numpy babble that needs no espeak-ng")


def _synthetic(args: argparse.Namespace) -> int:
    write_corpus(args.root, args.speakers, args.clips, seed=args.seed, voice=args.voice)
    print(f"wrote a synthetic OpenSLR 83 corpus to {args.root}")
    return 0


def _stress_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yamnet", help="handle (default: $BROGUE_YAMNET, else TF Hub)")
    parser.add_argument("--trials", type=positive_int, default=20, help="SIGKILL trials")
    parser.add_argument("--seed", type=int, default=0, help="of the corpus and the kill times")


def _stress(args: argparse.Namespace) -> int:
    from brogue.extract.yamnet.weights import resolve_handle
    from dev.stress import drill

    return drill(resolve_handle(args.yamnet), args.trials, args.seed)


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    listing = "; ".join(f"{name}: {about}" for name, (_, about) in BENCHMARKS.items())
    parser.add_argument("name", choices=BENCHMARKS, help=listing)
    parser.add_argument("options", nargs=argparse.REMAINDER,
                        help="its own flags (python -m dev bench NAME --help)")  # fmt: skip


def _bench(args: argparse.Namespace) -> int:
    module, _ = BENCHMARKS[args.name]
    return importlib.import_module(module).main(args.options)


COMMANDS = {
    "synthetic": Command("write a demo corpus in the OpenSLR 83 layout (espeak-ng or numpy)",
                         _synthetic_arguments, _synthetic),
    "bench": Command("run a benchmark: " + ", ".join(BENCHMARKS), _bench_arguments, _bench),
    "stress": Command("the cache's fault drill: SIGKILLs, two writers, a full disk, a cut "
                      "download", _stress_arguments, _stress),
}


if __name__ == "__main__":
    import sys

    from brogue.main import main

    sys.exit(main(table=COMMANDS))
