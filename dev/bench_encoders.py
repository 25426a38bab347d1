"""`make bench-encoders`: every encoder over one labelled corpus, compared the same way.

For each encoder it extracts the corpus into a cache of its own (audio-seconds per second of
the whole stage, model loading excluded; cache MB per audio hour), then scores each clip-level
family by nested speaker folds: every speaker is tested once by a model that never heard them,
and the pooled test decisions give clip and speaker balanced accuracy with their 95% intervals
(a bootstrap over speakers). Chance is 1 / accents. The default corpus is `../shared/accents-dev`
(real VCTK speech, 68 speakers, 6 accents). A last row fuses the caches of the encoders `--fuse`
names (`fit --cache A --cache B`) into one clip-linear model, scored on the same speaker folds:
its rate is the encoders' rates chained, its size their caches' sum. Small sets give wide
intervals: read them before the point estimates. The last line is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from brogue.extract import pipeline
from brogue.extract.corpus import resolve_corpus
from brogue.extract.engine import Encoder, EngineSpec
from brogue.train.config import make_config
from brogue.train.fit import fit
from dev.machine import cpu_line

ACCENTS_DEV = Path(__file__).resolve().parents[2] / "shared" / "accents-dev" / "manifest.csv"
CLIP_FAMILIES = ("clip-linear", "clip-attention")
# Whisper at its default layer and two others (`extract/whisper/spec.py`).
DEFAULT_ENCODERS = ("yamnet", "ge2e", "whisper:tiny.en@3", "whisper:tiny.en@2", "whisper:tiny.en@4",
                    "whisper:base@4", "whisper:base@3", "whisper:base@6")
FUSED_FAMILY = "clip-linear"  # the fused row's: no epochs to tune on a few hundred clips


def extract(encoder: Encoder, corpus: str, out: Path) -> dict:
    """Extract `corpus` with `encoder`; its speed and its cache's size."""
    sources = resolve_corpus(corpus, out.parent / "downloads", None)
    started = time.perf_counter()
    report = pipeline.run(sources, encoder, out, progress=False)
    seconds = time.perf_counter() - started
    size = sum(path.stat().st_size for path in out.glob("shard-*.h5"))
    accents = len(json.loads((out / "manifest.json").read_text())["labels"])
    return {"encoder": encoder.name, "dimensions": encoder.embedding_size, "accents": accents,
            "clips": report.clips, "failed": len(report.failures),
            "audio_s_per_s": report.seconds / seconds,
            "mb_per_audio_hour": size / 2**20 / (report.seconds / 3600)}  # fmt: skip


def score(cache: Path | list[Path], out: Path, family: str, folds: int) -> dict:
    """Pooled nested-CV test balanced accuracy of `family`, clips and speakers, with intervals."""
    config = make_config({"model": family, "folds": folds, "tensorboard": False})
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        summary = fit(cache, out, config, verbose=0)
    pooled = summary["test_pooled"]
    return {level: {"balanced_accuracy": pooled[level]["balanced_accuracy"],
                    "interval": pooled[level]["interval"], "count": pooled[level]["count"]}
            for level in ("clip", "speaker")}  # fmt: skip


def fused_row(rows: list[dict], caches: list[Path], out: Path, folds: int) -> dict:
    """The encoders' caches fused into one clip-linear model (each file through every encoder)."""
    return {"encoder": "+".join(row["encoder"] for row in rows),
            "dimensions": sum(row["dimensions"] for row in rows), "accents": rows[0]["accents"],
            "clips": min(row["clips"] for row in rows),
            "failed": max(row["failed"] for row in rows),
            "audio_s_per_s": 1 / sum(1 / row["audio_s_per_s"] for row in rows),
            "mb_per_audio_hour": sum(row["mb_per_audio_hour"] for row in rows),
            "families": {FUSED_FAMILY: score(caches, out, FUSED_FAMILY, folds)}}  # fmt: skip


def _cell(level: dict) -> str:
    low, high = level["interval"]
    return f"{level['balanced_accuracy']:.3f} [{low:.2f}, {high:.2f}]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-encoders", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ACCENTS_DEV),
                        help="a CSV manifest or folder with accent labels and speakers "
                        "(default: ../shared/accents-dev/manifest.csv)")
    parser.add_argument("--encoders", default=",".join(DEFAULT_ENCODERS),
                        help=f"comma-separated encoder names (default: {','.join(DEFAULT_ENCODERS)}"
                        "; add hf:MODEL[@LAYER] where its weights can be had)")
    parser.add_argument("--fuse", default="yamnet,ge2e",
                        help="encoders of --encoders whose caches a last row fuses; '' for none "
                        "(default: yamnet,ge2e)")
    parser.add_argument("--folds", type=int, default=5, help="outer speaker folds (default 5)")
    args = parser.parse_args(argv)
    if not Path(args.corpus).exists():
        parser.error(f"{args.corpus} does not exist: name a labelled corpus with --corpus")
    print(cpu_line(), flush=True)
    rows, caches = [], []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.encoders.split(","):
            cache = Path(folder) / name.replace("/", "_").replace(":", "_") / "cache"
            row = extract(EngineSpec(name).load(), args.corpus, cache)
            row["families"] = {family: score(cache, cache.parent / family, family, args.folds)
                               for family in CLIP_FAMILIES}  # fmt: skip
            rows.append(row)
            caches.append(cache)
            print(f"{name}: {row['audio_s_per_s']:.1f} audio-s/s, "
                  f"{row['mb_per_audio_hour']:.1f} MB per audio hour", flush=True)
        fused = [index for index, row in enumerate(rows)
                 if row["encoder"] in args.fuse.split(",")]
        if len(fused) > 1:
            rows.append(fused_row([rows[i] for i in fused], [caches[i] for i in fused],
                                  Path(folder) / "fused", args.folds))
    accents = rows[0]["accents"]
    print(f"\nnested {args.folds}-fold speaker CV on {args.corpus} ({rows[0]['clips']} clips, "
          f"{accents} accents, chance {1 / accents:.3f}); balanced accuracy [95% interval]")
    print(f"{'encoder':34} {'D':>5} {'audio-s/s':>10} {'MB/h':>7} {'family':15} "
          f"{'clips':24} {'speakers':24}")
    for row in rows:
        for family, found in row["families"].items():
            print(f"{row['encoder']:34} {row['dimensions']:5d} {row['audio_s_per_s']:10.1f} "
                  f"{row['mb_per_audio_hour']:7.1f} {family:15} {_cell(found['clip']):24} "
                  f"{_cell(found['speaker']):24}")
    print("RESULT " + json.dumps({"corpus": args.corpus, "folds": args.folds,
                                  "chance": 1 / accents, "encoders": rows}))
    return 0
