"""Issue 20, section 3: YAMNet and a wav2vec2-base-sized hf encoder on one GPU, and what the 31 h
of OpenSLR 83 would take. Run by `dev/gpu_bench.sh` on a machine the `device` tool lends.

- `yamnet`: the native engine, Keras runtime under KERAS_BACKEND=jax (XLA on the GPU; the front
  end on the host), on the imported Keras weights in --weights (no TensorFlow, no Hub needed).
  Times the compute alone (waveforms in memory) at several batch sizes, then the whole
  extraction stage (decode workers, front end, network, shard writes) on a numpy-voiced
  synthetic corpus in the OpenSLR 83 layout at the best batch size.
- `hf`: wav2vec2-base's architecture (95 M parameters, random weights: the machine has no
  internet) under torch on the GPU, fp32 and bf16, on 16.3 s blocks, batched.

Prints audio-seconds per second, the projected time for 31 h, and `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

OPENSLR83_HOURS = 31.0
GOAL_S = 60.0  # issue 20: YAMNet over OpenSLR 83 in a minute on one H100-class GPU


def rate(action: Callable[[], object], seconds: float, rounds: int) -> float:
    """Median audio-seconds per second of `action` over `rounds`, after one warm-up call."""
    action()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return seconds / statistics.median(times)


def projection(audio_s_per_s: float) -> str:
    total = OPENSLR83_HOURS * 3600 / audio_s_per_s
    return f"{audio_s_per_s:,.0f} audio-s/s: 31 h of OpenSLR 83 in {total:,.0f} s"


def yamnet(weights: Path, rounds: int, workers: int) -> dict:
    import jax

    from brogue.extract import pipeline
    from brogue.extract.audio import load_audio
    from brogue.extract.corpus import openslr83_clips
    from brogue.extract.weights_store import ImportedWeights
    from brogue.extract.yamnet.engines import NativeEngine
    from dev.signals import speech_like
    from dev.synthetic_corpus import write_corpus

    print(f"jax {jax.__version__}: {jax.devices()}")
    if jax.default_backend() == "cpu":
        raise SystemExit("jax sees no GPU here (pip install 'jax[cuda12]')")
    (weights_file,) = weights.glob("*.weights.h5")
    fingerprint = weights_file.name.removesuffix(".weights.h5")
    imported = ImportedWeights(str(weights), fingerprint, weights_file)
    rng = np.random.default_rng(0)
    waveforms = [speech_like(seconds, rng) for seconds in rng.uniform(3.6, 8.4, 600)]
    seconds = sum(len(waveform) for waveform in waveforms) / 16000
    compute = {}
    for batch in (32, 256, 1024):
        engine = NativeEngine.from_imported(imported, "keras", "fp32", batch)
        compute[batch] = rate(lambda engine=engine: engine.frames(waveforms), seconds, rounds)
        print(f"yamnet compute, batch {batch:5d}: {projection(compute[batch])}", flush=True)
    best = max(compute, key=compute.get)
    engine = NativeEngine.from_imported(imported, "keras", "fp32", best)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sources = [source for part in range(3) for source in openslr83_clips(
            write_corpus(root / f"corpus{part}", 6, 8, seed=part, voice="numpy"))]
        corpus_seconds = sum(len(load_audio(source.path)) for source in sources) / 16000
        runs = iter(range(1_000_000))
        stage = rate(lambda: pipeline.run(sources, engine, root / f"cache-{next(runs)}",
                                          workers=workers, progress=False),
                     corpus_seconds, rounds)
    print(f"yamnet stage (batch {best}, {workers} decode workers): {projection(stage)}; "
          f"goal <= {GOAL_S:.0f} s", flush=True)
    return {"compute": {str(batch): round(value) for batch, value in compute.items()},
            "stage": round(stage), "batch": best,
            "openslr83_s": round(OPENSLR83_HOURS * 3600 / stage, 1)}


def hf(rounds: int) -> dict:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    if not torch.cuda.is_available():
        raise SystemExit("torch sees no GPU here")
    print(f"torch {torch.__version__}: {torch.cuda.get_device_name()}")
    model = Wav2Vec2Model(Wav2Vec2Config()).cuda().eval()  # the defaults: wav2vec2-base
    block = int(16.3 * 16000)
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        for batch in (8, 32):
            inputs = torch.randn(batch, block, device="cuda")

            def forward(inputs=inputs, dtype=dtype) -> None:
                with torch.inference_mode(), torch.autocast("cuda", dtype, enabled=dtype
                                                            != torch.float32):
                    model(inputs).last_hidden_state.float().cpu()

            name = f"{str(dtype).removeprefix('torch.')}/batch{batch}"
            results[name] = rate(forward, batch * block / 16000, rounds)
            print(f"wav2vec2-base {name}: {projection(results[name])}", flush=True)
    return {name: round(value) for name, value in results.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("yamnet", "hf"))
    parser.add_argument("--weights", type=Path,
                        help="yamnet: folder with <fingerprint>.weights.h5 and .class_map.csv")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    result = (yamnet(args.weights, args.rounds, args.workers) if args.part == "yamnet"
              else hf(args.rounds))
    print("RESULT " + json.dumps({"bench": f"gpu-{args.part}", **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
