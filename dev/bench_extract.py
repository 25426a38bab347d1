"""`make bench-extract`: the whole extraction stage, hub against every native runtime and
precision this machine has, in one run.

On one synthetic espeak-ng corpus (OpenSLR 83 layout, 48 kHz) it times, interleaved over
rounds so that the machine's other load falls on all of them:
  - hub:                the stage (decode, resample, YAMNet, shard writes) with TF Hub's
                        model called once per clip, as the Keras example does;
  - RUNTIME/PRECISION:  the same stage with the native engine in that runtime and precision;
  - compute RUNTIME/PRECISION: that engine's YAMNet compute alone (front end and network) on
                        waveforms already in memory.
It prints audio-seconds per second for each and the ratios the issues set targets for: stage
over hub (`targets`: fp32 >= 2.5 where OpenVINO's kernels stop at AVX2, >= 3 with AVX-512;
bf16 >= 4) and stage time over compute time (<= 1.3), and the most those ratios could be
with the CPU work each stage did (its CPU-seconds, decode workers included, spread perfectly
over this machine's cores). Then a memory line: the peak RSS of `brogue extract`, all
processes together, on one long recording (--long-hours, default 3; `make bench-memory`
measures more). The last line is `RESULT {json}` with `ratios` {"runtime/precision": stage
speed over hub's}. Under an instruction-set cap (`dev/machine.py`) the first line says
EMULATED, and bf16 is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from brogue.extract import pipeline
from brogue.extract.audio import load_audio
from brogue.extract.corpus import openslr83_clips
from brogue.extract.decode import DEFAULT_WORKERS
from dev.machine import convolution_kernel, cpu_line
from dev.synthetic_corpus import write_corpus


def targets() -> dict[str, float]:
    """Issue 26's goals for the stage over hub, by the kernels OpenVINO runs here (an
    instruction-set cap included): fp32 2.5x on AVX2, 3x on AVX-512; bf16, where AMX or
    AVX512-BF16 computes it, 4x."""
    return {"fp32": 3.0 if "avx512" in convolution_kernel("f32") else 2.5, "bf16": 4.0}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-extract", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yamnet", help="handle (default: $BROGUE_YAMNET, else TF Hub)")
    parser.add_argument("--parts", type=int, default=3,
                        help="corpus copies with other voices' pitch and rate (192 clips each)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--long-hours", type=float, default=3.0,
                        help="length of the recording for the memory line; 0 skips it")
    args = parser.parse_args(argv)
    print(cpu_line(), flush=True)
    # Imported here, not at the top: spawned decode workers re-import this module.
    from brogue.extract.yamnet.engines import DEFAULT_BATCH_PATCHES, HubEngine
    from brogue.extract.yamnet.weights import resolve_handle
    from dev.bench_yamnet import interleaved, median_ratios, native_engines

    handle = resolve_handle(args.yamnet)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sources = [
            source
            for part in range(args.parts)
            for source in openslr83_clips(write_corpus(root / f"corpus{part}", 6, 8, seed=part))
        ]
        engines = {"hub": HubEngine(handle), **native_engines(handle, DEFAULT_BATCH_PATCHES)}
        waveforms = [load_audio(source.path) for source in sources]
        seconds = sum(len(waveform) for waveform in waveforms) / 16000
        runs = iter(range(1_000_000))

        def stage(engine) -> Callable[[], object]:
            return lambda: pipeline.run(sources, engine, root / f"cache-{next(runs)}",
                                        workers=args.workers, progress=False)

        cases: dict[str, Callable[[], object]] = {}
        for name, engine in engines.items():
            cases[name] = stage(engine)
            if name != "hub":
                cases[f"compute {name}"] = lambda engine=engine: engine.frames(waveforms)
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        rates = interleaved({name: counting_cpu(action, cpu[name])
                             for name, action in cases.items()}, seconds, args.rounds)

    natives = [name for name in engines if name != "hub"]
    print(f"{len(sources)} clips, {seconds:.0f} s of audio ({seconds / len(sources):.1f} s "
          f"mean); {args.workers} decode workers; {args.rounds} interleaved rounds, medians")
    for name, values in rates.items():
        print(f"  {name:22s} {statistics.median(values):8.0f} audio-s/s")
    ratios = median_ratios(rates, "hub")
    # Per round: compute rate / stage rate = stage time / compute time.
    overhead = {name: statistics.median(compute / stage for stage, compute in
                                        zip(rates[name], rates[f"compute {name}"], strict=True))
                for name in natives}
    goals = targets()
    for name in natives:
        target = goals[name.split("/")[1]]
        print(f"{name:14s} stage / hub stage speed {ratios[name]:5.2f}x (target >= {target:g}); "
              f"stage time / compute time {overhead[name]:.2f} (target <= 1.3)")
    # The fastest a stage could be with the CPU work it did: every core busy all the time.
    cores = len(os.sched_getaffinity(0))
    hub = statistics.median(rates["hub"])
    ceiling = {}
    print(f"CPU work per run (medians, the warm-up left out), and what it allows on {cores} cores:")
    for name in natives:
        stage_cpu = statistics.median(cpu[name][1:])
        compute_cpu = statistics.median(cpu[f"compute {name}"][1:])
        compute_wall = seconds / statistics.median(rates[f"compute {name}"])
        best = seconds / (stage_cpu / cores)
        ceiling[name] = {"stage_cpu_s": round(stage_cpu, 2),
                         "compute_cpu_s": round(compute_cpu, 2), "ratio": round(best / hub, 3),
                         "stage_time_over_compute_time": round(stage_cpu / cores / compute_wall, 3)}
        print(f"  {name:14s} stage {stage_cpu:5.2f} CPU-s (compute alone {compute_cpu:5.2f}); "
              f"at best {best:4.0f} audio-s/s = {ceiling[name]['ratio']:.2f}x hub, "
              f"stage time / compute time >= {ceiling[name]['stage_time_over_compute_time']:.2f}")
    result = {
        "bench": "extract", "clips": len(sources), "audio_seconds": round(seconds),
        "audio_s_per_s": {name: round(statistics.median(v)) for name, v in rates.items()},
        "ratios": {name: round(ratios[name], 3) for name in natives},
        "stage_time_over_compute_time": {name: round(value, 3)
                                         for name, value in overhead.items()},
        "ceiling": ceiling, "targets": goals, "cpu": cpu_line(),
    }
    if args.long_hours:
        from dev.memory import extraction_peak

        print(extraction_peak(args.long_hours, handle, args.workers))
    print("RESULT " + json.dumps(result))
    return 0


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the decode workers)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(part.ru_utime + part.ru_stime for part in usage)


def counting_cpu(action: Callable[[], object], spent: list[float]) -> Callable[[], object]:
    """`action`, appending the CPU-seconds of each call to `spent`."""

    def counted() -> object:
        start = cpu_seconds()
        result = action()
        spent.append(cpu_seconds() - start)
        return result

    return counted
