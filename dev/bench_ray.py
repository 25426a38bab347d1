"""`make bench-ray`: the local executor against Ray Data in local mode, in one run.

On one synthetic espeak-ng corpus (OpenSLR 83 layout, 48 kHz; its copies are hard links, other
paths and so other clips, to reach a long run's size cheaply) each round extracts a fresh
cache three ways, interleaved so that the machine's other load falls on all of them:
  1. local:     `brogue extract` (decode worker processes, YAMNet in this process, its
                engine already loaded, as in a long run);
  2. ray:       `brogue extract --executor ray` on a Ray already started with this machine's
                cores: decoding as Ray tasks, one YAMNet actor, which starts with the run;
  3. ray, 1 clip: the same on one clip, the fixed cost of a Ray run (actor start, scheduling).
It also times decoding alone (hash, decode, resample in this process), which tells how many
CPU cores feed one actor. It prints audio-seconds per second and the ratios: Ray's time over
the local time (target <= 1.3 on 2 cores), with and without Ray's fixed cost.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from brogue.errors import require
from brogue.extract import decode, pipeline
from brogue.extract.corpus import folder_clips
from dev.synthetic_corpus import write_corpus


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-ray", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yamnet", help="handle (default: $BROGUE_YAMNET, else TF Hub)")
    parser.add_argument("--parts", type=int, default=2,
                        help="corpus copies with other voices' pitch and rate (192 clips each)")
    parser.add_argument("--copies", type=int, default=6,
                        help="hard-linked copies of the corpus in the run (default: 6)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clips-per-call", type=int, help="clips per actor call "
                        "(default: the executor's)")
    args = parser.parse_args(argv)
    ray = require("ray", "ray", "make bench-ray")
    # Imported here, not at the top: spawned decode workers re-import this module.
    from brogue.extract.ray_executor import CLIPS_PER_CALL, EngineSpec, executor
    from brogue.extract.yamnet.weights import resolve_handle

    spec = EngineSpec("native", resolve_handle(args.yamnet))
    engine = spec.load()
    on_ray = executor(spec, actors=1, clips_per_call=args.clips_per_call or CLIPS_PER_CALL)
    cores = os.cpu_count()
    ray.init(num_cpus=cores, object_store_memory=300 * 2**20, include_dashboard=False,
             logging_level="WARNING")  # fmt: skip
    try:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            for part in range(args.parts):
                write_corpus(root / "corpus" / f"part{part}", 6, 8, seed=part)
            for copy in range(args.copies):  # one root, so that every copy is other clips
                shutil.copytree(root / "corpus", root / "all" / f"copy{copy}",
                                copy_function=os.link)  # fmt: skip
            sources = folder_clips(root / "all")

            def extract(name: str, clips, how: pipeline.Executor | None) -> Callable[[], object]:
                def run() -> None:
                    report = pipeline.run(clips, engine, root / name, progress=False,
                                          executor=how)  # fmt: skip
                    if report.clips != len(clips):
                        raise RuntimeError(f"{name}: extracted {report.clips} of {len(clips)}")

                return run

            def decode_all() -> float:
                return sum(decode.prepare(source).seconds for source in sources)

            seconds = decode_all()  # and the page cache is warm for every case
            extract("warm-up", sources[:16], None)()  # compiles every batch shape once
            times: dict[str, list[float]] = {"local": [], "ray": [], "ray, 1 clip": [],
                                             "decoding": []}  # fmt: skip
            for round_ in range(args.rounds):
                times["local"].append(timed(extract(f"local-{round_}", sources, None)))
                times["ray"].append(timed(extract(f"ray-{round_}", sources, on_ray)))
                times["ray, 1 clip"].append(timed(extract(f"one-{round_}", sources[:1], on_ray)))
                times["decoding"].append(timed(decode_all))
    finally:
        ray.shutdown()

    print(f"{len(sources)} clips, {seconds:.0f} s of audio ({seconds / len(sources):.1f} s mean) "
          f"on {cores} cores; one YAMNet actor, {args.clips_per_call or CLIPS_PER_CALL} clips "
          f"per call; {args.rounds} interleaved rounds, medians")
    median = {case: statistics.median(values) for case, values in times.items()}
    for case, value in median.items():
        rate = seconds / value if case != "ray, 1 clip" else float("nan")
        print(f"  {case:12s} {rate:8.0f} audio-s/s   ({value:.2f} s; "
              f"{', '.join(f'{v:.2f}' for v in times[case])})")
    steady = median["ray"] - median["ray, 1 clip"]
    print(f"ray / local time:                   {median['ray'] / median['local']:.2f}x "
          "(target <= 1.3x on 2 cores)")
    print(f"ray / local, less Ray's fixed cost: {steady / median['local']:.2f}x "
          f"(fixed cost {median['ray, 1 clip']:.1f} s per run)")
    print(f"per-actor rate, steady:             {seconds / steady:.0f} audio-s/s")
    print(f"decoding alone, one core:           {seconds / median['decoding']:.0f} audio-s/s")
    return 0
