"""`brogue extract`: run an encoder once over a corpus into the HDF5 shard cache;
`brogue verify`: check a cache, and repair what is safe to repair.

SRC is `openslr83` (downloaded on first use), a folder in the OpenSLR 83 layout,
a CSV manifest (`path,label,speaker`, ...), or any folder of audio files.
Exit codes: 0 every clip is cached, 3 the run finished but some clips failed (listed),
1 fatal, 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from brogue.cache.lock import refuse_if_busy
from brogue.cache.schema import EMBEDDING_DTYPES
from brogue.command import Command, non_negative_float, non_negative_int, positive_int
from brogue.errors import SOME_FAILED

from . import pipeline
from .corpus import resolve_corpus
from .decode import DEFAULT_WORKERS
from .engine import Encoder, EncoderError, EngineSpec
from .yamnet.params import DEFAULT_HANDLE
from .yamnet.runtime import PRECISIONS, RUNTIMES

# Decode workers are spawned, and spawning re-imports this module in each of them:
# Keras and TensorFlow are imported inside run() so that workers start in a blink.


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """--engine, --runtime, --precision and --batch-size, for every verb that runs YAMNet."""
    parser.add_argument("--engine", choices=("native", "hub"), default="native",
                        help="YAMNet engine: native (batched) or hub (the reference)")
    parser.add_argument("--runtime", choices=(*RUNTIMES, "torch"), default="auto",
                        help="where the encoder's network runs; auto: openvino on a CPU, keras "
                        "where jax has a GPU; torch for hf: encoders only (default: auto)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="bf16 needs openvino and a CPU with AMX or AVX512-BF16; a cache "
                        "holds one precision (default: fp32)")
    parser.add_argument("--batch-size", type=positive_int,
                        help="patches per native YAMNet batch (default: the engine's)")


def add_yamnet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yamnet", help="TF Hub handle or SavedModel folder "
                        f"(default: $BROGUE_YAMNET, else {DEFAULT_HANDLE})")


def engine_spec(args: argparse.Namespace) -> EngineSpec:
    """What the flags of `add_engine_arguments` (and --encoder, --yamnet) ask for, for any
    process."""
    encoder = getattr(args, "encoder", "yamnet")
    if encoder != "yamnet" and args.engine == "hub":
        raise EncoderError("--engine hub is YAMNet's reference graph; other encoders have none")
    return EngineSpec(encoder, args.yamnet if encoder == "yamnet" else None, args.runtime,
                      args.precision, args.batch_size, reference=args.engine == "hub")


def load_engine(args: argparse.Namespace) -> Encoder:
    """The engine the flags of `add_engine_arguments` (and --yamnet) ask for."""
    return engine_spec(args).load()


def describe_engine(engine: Encoder) -> str:
    return (f"{engine.name} {engine.handle} (weights {engine.fingerprint}, "
            f"{engine.runtime} {engine.precision})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", default="openslr83", metavar="SRC",
                        help="openslr83, a folder, or a CSV manifest (default: openslr83)")
    parser.add_argument("--out", type=Path, default=Path("data/embeddings"),
                        help="cache folder (default: data/embeddings)")
    parser.add_argument("--download-dir", type=Path, default=Path("data/openslr83"),
                        help="where OpenSLR 83 is downloaded (default: data/openslr83)")
    parser.add_argument("--subsets", type=lambda text: text.split(","),
                        help="OpenSLR 83 subsets, comma-separated (default: all)")
    parser.add_argument("--encoder", default="yamnet", metavar="NAME",
                        help="yamnet, ge2e (Resemblyzer's speaker encoder), hf:MODEL[@LAYER] (a "
                        "Hugging Face speech model's hidden layer, pip install 'brogue[hf]') or "
                        "whisper:MODEL[@LAYER] (Whisper's encoder without torch: tiny.en, base, "
                        "a folder or a Hub id; pip install 'brogue[whisper]') (default: yamnet)")
    add_engine_arguments(parser)
    add_yamnet_argument(parser)
    parser.add_argument("--shard-frames", type=positive_int,
                        default=pipeline.DEFAULT_SHARD_FRAMES,
                        help="a shard is published once it holds this many frames "
                        f"(default: {pipeline.DEFAULT_SHARD_FRAMES})")
    parser.add_argument("--workers", type=non_negative_int, default=DEFAULT_WORKERS,
                        help="local executor: decoding processes; 0 decodes in the main process "
                        f"(default: {DEFAULT_WORKERS})")
    parser.add_argument("--embedding-dtype", choices=EMBEDDING_DTYPES, default="float32")
    parser.add_argument("--limit", type=positive_int, help="only the first N clips of the corpus")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local: this machine; ray: Ray Data on a cluster, into the same "
                        "cache (pip install 'brogue[ray]') (default: local)")
    ray = parser.add_argument_group("Ray executor")
    ray.add_argument("--address", help="the Ray cluster: auto or ray://HOST:PORT (default: "
                     "$RAY_ADDRESS, else a Ray started on this machine)")
    ray.add_argument("--num-gpus-per-actor", type=non_negative_float, default=0.0, metavar="G",
                     help="GPUs each YAMNet actor asks for; fractions share a GPU (default: 0)")
    ray.add_argument("--actors", type=positive_int, metavar="N",
                     help="YAMNet actors (default: one per node, or as many as the GPUs allow)")


def summary(report: pipeline.RunReport) -> str:
    lines = [
        f"extracted {report.clips} clips, {report.frames} frames, "
        f"{report.seconds / 3600:.2f} h of audio into {report.shards_written} new shards",
        f"skipped {report.cached} clips already cached",
        f"failed {len(report.failures)} clips" + (":" if report.failures else ""),
        *(f"  {failure['reason']}" for failure in report.failures),
        f"cache: {report.out.resolve()}",
    ]
    return "\n".join(lines)


def _executor_context(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """Connected to Ray for the run, checked before YAMNet is loaded, with --executor ray."""
    if args.executor == "ray":
        from .ray_executor import connected

        return connected(args.address)
    return contextlib.nullcontext()


def _executor(args: argparse.Namespace, spec: EngineSpec) -> pipeline.Executor | None:
    if args.executor == "ray":
        from .ray_executor import executor

        return executor(spec, actors=args.actors, num_gpus_per_actor=args.num_gpus_per_actor)
    return None  # the local one, with --workers


def run(args: argparse.Namespace) -> int:
    refuse_if_busy(args.out)  # before a download or loading YAMNet, not after
    try:
        with _executor_context(args):
            sources = resolve_corpus(args.corpus, args.download_dir, args.subsets)
            sources = sources[: args.limit]
            spec = engine_spec(args)
            engine = spec.load()
            print(f"{len(sources)} clips from {args.corpus}; {describe_engine(engine)}, "
                  f"{args.executor} executor", file=sys.stderr)
            parameters = {name: (str(value) if isinstance(value, Path) else value)
                          for name, value in vars(args).items() if name not in ("verb", "verbose")}
            report = pipeline.run(
                sources, engine, args.out, shard_frames=args.shard_frames, workers=args.workers,
                embedding_dtype=args.embedding_dtype, parameters=parameters,
                executor=_executor(args, spec),
            )
    except KeyboardInterrupt:
        print(f"interrupted: finished shards are kept in {args.out}; run again to continue",
              file=sys.stderr)
        raise
    print(summary(report))
    return SOME_FAILED if report.failures else 0


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cache", type=Path, metavar="DIR", help="the cache folder")
    parser.add_argument("--repair", action="store_true",
                        help="rebuild the manifest from the shards and remove orphan temporary "
                        "files; finished shards are never deleted")  # fmt: skip


def run_verify(args: argparse.Namespace) -> int:
    from brogue.cache.verify import verify

    verdict = verify(args.cache, repair=args.repair)
    for problem in verdict.problems:
        print(f"  {problem}", file=sys.stderr)
    print(verdict.line())
    return SOME_FAILED if verdict.problems else 0


COMMANDS = {
    "extract": Command("run an encoder once over a corpus into the HDF5 shard cache",
                       add_arguments, run),
    "verify": Command("check a shard cache: shards, frame ranges, duplicates, manifest",
                      add_verify_arguments, run_verify),
}
