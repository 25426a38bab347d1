"""The extraction run: clips -> YAMNet -> shards, resumable and bounded in memory.

Worker processes (`decode.py`) hash, decode and resample while the main process
runs YAMNet (front end and network), so I/O hides behind compute; the engine packs
the patches of consecutive clips into full batches as it likes. Finished
clips go into the current shard; a shard is published atomically every
`shard_size` clips and the manifest is rewritten after it, so a crash loses at
most the shard in progress. A rerun skips clips whose content
hash is already in a finished shard before any decoding or YAMNet work.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from . import shards
from .corpus import ClipSource
from .decode import DEFAULT_WORKERS, Prepared, prepared_in_order

if TYPE_CHECKING:  # importing the engines here would pull Keras into every decode worker
    from .yamnet.engines import Engine

DEFAULT_SHARD_SIZE = 256  # clips: ~3,300 frames, ~20 MB float32, ~4 min of CPU work to lose


@dataclasses.dataclass
class RunReport:
    out: Path
    clips: int = 0
    frames: int = 0
    seconds: float = 0.0
    cached: int = 0
    shards_written: int = 0
    failures: list[dict[str, str]] = dataclasses.field(default_factory=list)


def computed(engine: Engine, clips: Iterator[Prepared]
             ) -> Iterator[tuple[Prepared, np.ndarray, np.ndarray]]:
    """(clip, scores, embeddings) for every clip that reached YAMNet, in order."""
    for clip, frames in engine.stream((clip, clip.waveform) for clip in clips):
        yield clip, frames.scores, frames.embeddings


def run(
    sources: Sequence[ClipSource],
    engine: Engine,
    out: Path,
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    workers: int = DEFAULT_WORKERS,
    embedding_dtype: str = "float32",
    parameters: dict | None = None,
    progress: bool = True,
) -> RunReport:
    """Extract every clip not yet cached in `out`; returns what was done."""
    out = Path(out)
    _check_writable(out)
    attrs = shards.ShardAttrs(engine.handle, engine.fingerprint, engine.params.to_json(),
                              brogue_version(), engine.runtime, engine.precision)
    _check_same_yamnet(out, engine)
    cached = frozenset(shards.cached_clips(out, attrs))
    extra_columns = sorted({name for source in sources for name in source.extra})
    report = RunReport(out)
    bar = tqdm(total=len(sources), unit="clip", disable=not progress, smoothing=0.05)

    def to_compute() -> Iterator[Prepared]:
        for clip in prepared_in_order(sources, workers, cached):
            if clip.waveform is not None:
                yield clip
                continue
            if clip.cached:
                report.cached += 1
            else:
                report.failures.append({"path": str(clip.source.path), "reason": clip.failure})
            bar.update()

    writer, in_shard, started = None, 0, time.monotonic()
    try:
        for clip, scores, embeddings in computed(engine, to_compute()):
            if writer is None:
                writer = shards.ShardWriter(out, shards.next_shard_index(out), attrs,
                                            embedding_dtype, extra_columns)
            writer.add_clip(_clip_meta(clip, extra_columns), scores, embeddings)
            in_shard += 1
            report.clips, report.frames = report.clips + 1, report.frames + len(scores)
            report.seconds += clip.seconds
            bar.update()
            rate = report.seconds / max(time.monotonic() - started, 1e-9)
            bar.set_postfix_str(f"{rate:.0f} audio-s/s", refresh=False)
            if in_shard == shard_size:
                writer.close()
                writer, in_shard = None, 0
                report.shards_written += 1
                _write_manifest(out, engine, embedding_dtype, parameters, report)
        if writer is not None:
            writer.close()
            report.shards_written += 1
    finally:
        bar.close()
        # Also after a crash or Ctrl-C: the failures so far and the finished shards.
        _write_manifest(out, engine, embedding_dtype, parameters, report)
    return report


def brogue_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("brogue")
    except PackageNotFoundError:
        return "unknown"


def _clip_meta(clip: Prepared, extra_columns: Sequence[str]) -> shards.ClipMeta:
    source = clip.source
    return shards.ClipMeta(
        str(source.path), source.label, source.speaker, clip.seconds, clip.content_hash,
        {name: source.extra.get(name, "") for name in extra_columns},
    )


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".writable"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise shards.CacheError(f"{out}: output folder is not writable ({error.strerror})"
                                ) from None


def _check_same_yamnet(out: Path, engine: Engine) -> None:
    if not (out / shards.MANIFEST).exists():
        return
    found = shards.read_manifest(out).get("yamnet", {})
    if found.get("fingerprint") != engine.fingerprint:
        raise shards.CacheError(
            f"{out} holds embeddings of YAMNet weights {found.get('fingerprint')} "
            f"({found.get('handle')}), not {engine.fingerprint} ({engine.handle}); "
            "refusing to mix two models: choose another --out or delete it"
        )
    if found.get("precision", "fp32") != engine.precision:
        raise shards.CacheError(
            f"{out} holds {found.get('precision', 'fp32')} embeddings, not {engine.precision}; "
            "refusing to mix two precisions: choose another --out or pass --precision "
            f"{found.get('precision', 'fp32')}"
        )


def _write_manifest(out: Path, engine: Engine, embedding_dtype: str, parameters: dict | None,
                    report: RunReport) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    previous = shards.read_manifest(out) if (out / shards.MANIFEST).exists() else {}
    shards.write_manifest(out, {
        **shards.summarise(out),
        "failures": report.failures,
        "yamnet": {"handle": engine.handle, "fingerprint": engine.fingerprint,
                   "params": dataclasses.asdict(engine.params), "runtime": engine.runtime,
                   "precision": engine.precision},
        "engine": engine.name,
        "embedding_dtype": embedding_dtype,
        "brogue_version": brogue_version(),
        "parameters": parameters or {},
        "created": previous.get("created", now),
        "updated": now,
    })
