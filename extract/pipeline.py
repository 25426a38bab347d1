"""The extraction run: clips -> YAMNet -> shards, resumable and bounded in memory.

Worker processes (`decode.py`) hash, decode and resample while the main process
runs YAMNet (front end and network), so I/O hides behind compute; the engine packs
the patches of consecutive clips into full batches as it likes. A long recording
arrives as waveform pieces whose frames are appended to its clip as they come, so
memory holds a few blocks of it, never the whole. Finished clips go into the
current shard; once it holds `shard_frames` frames it is published atomically and
the manifest is rewritten, so a crash loses at most the shard in progress. The run
holds the cache's writer lock throughout. A rerun skips clips whose file is
unchanged (same size and modification time, or else same content hash) before any
decoding or YAMNet work.
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

from brogue import atomic

from . import shards
from .corpus import ClipSource
from .decode import DEFAULT_WORKERS, Prepared, prepared_in_order
from .lock import writer_lock

if TYPE_CHECKING:  # importing the engines here would pull Keras into every decode worker
    from .yamnet.engines import Engine

DEFAULT_SHARD_FRAMES = 4096  # ~300 OpenSLR 83 clips, 25 MB float32, ~5 min of CPU work to lose


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
    shard_frames: int = DEFAULT_SHARD_FRAMES,
    workers: int = DEFAULT_WORKERS,
    embedding_dtype: str = "float32",
    parameters: dict | None = None,
    progress: bool = True,
) -> RunReport:
    """Extract every clip not yet cached in `out`; returns what was done.

    Refuses at once (`CacheBusyError`) while another process writes `out`.
    """
    out = Path(out)
    _check_writable(out)
    with writer_lock(out):
        remove_orphans(out)
        return _run_locked(sources, engine, out, shard_frames, workers, embedding_dtype,
                           parameters, progress)  # fmt: skip


def remove_orphans(out: Path) -> list[Path]:
    """Delete the temporary files a killed writer left; only the lock holder may call this."""
    orphans = sorted(path for path in out.iterdir() if atomic.is_temporary(path))
    for path in orphans:
        path.unlink()
    return orphans


def _run_locked(sources: Sequence[ClipSource], engine: Engine, out: Path, shard_frames: int,
                workers: int, embedding_dtype: str, parameters: dict | None, progress: bool
                ) -> RunReport:  # fmt: skip
    attrs = shards.ShardAttrs(engine.handle, engine.fingerprint, engine.params.to_json(),
                              brogue_version(), engine.runtime, engine.precision)
    _check_same_yamnet(out, engine)
    cached = shards.cached_clips(out, attrs)
    extra_columns = sorted({name for source in sources for name in source.extra})
    report = RunReport(out)
    bar = tqdm(total=len(sources), unit="clip", disable=None if progress else True,
               smoothing=0.05)  # disable=None: no bar when stderr is not a terminal

    prepared = prepared_in_order(sources, workers, cached)

    def to_compute() -> Iterator[Prepared]:
        for clip in prepared:
            if clip.waveform is not None:
                yield clip
                continue
            if clip.cached:
                report.cached += 1
            else:
                report.failures.append({"path": str(clip.source.path), "reason": clip.failure})
            bar.update()

    writer: shards.ShardWriter | None = None
    started = time.monotonic()
    try:
        for clip, scores, embeddings in computed(engine, to_compute()):
            if clip.piece == 0:
                if writer is not None:
                    writer.abort_clip()  # the open clip's later pieces never came: it failed
                if writer is None:
                    writer = shards.ShardWriter(out, shards.next_shard_index(out), attrs,
                                                embedding_dtype, extra_columns)
                writer.begin_clip(_clip_meta(clip, extra_columns))
            writer.add_frames(scores[: clip.frames], embeddings[: clip.frames])
            if not clip.last:
                continue
            report.frames += writer.end_clip()
            report.clips, report.seconds = report.clips + 1, report.seconds + clip.seconds
            bar.update()
            rate = report.seconds / max(time.monotonic() - started, 1e-9)
            bar.set_postfix_str(f"{rate:.0f} audio-s/s", refresh=False)
            if writer.frames >= shard_frames:
                _publish(writer, report)
                writer = None
                _write_manifest(out, engine, embedding_dtype, parameters, report)
        if writer is not None:
            writer.abort_clip()
            _publish(writer, report)
            writer = None
    except OSError as error:
        raise _disk_error(out, error) from None
    finally:
        prepared.close()  # stops the decode workers now, also when the run failed
        bar.close()
        if writer is not None:
            writer.discard()
        # Also after a crash or Ctrl-C: the failures so far and the finished shards.
        try:
            _write_manifest(out, engine, embedding_dtype, parameters, report)
        except OSError as error:
            raise _disk_error(out, error) from None
    return report


def _publish(writer: shards.ShardWriter, report: RunReport) -> None:
    if writer.clips:
        writer.close()
        report.shards_written += 1
    else:
        writer.discard()


def _disk_error(out: Path, error: OSError) -> shards.CacheError:
    """A failed write as one line: finished shards are intact, the shard in progress is not."""
    reason = error.strerror or str(error).splitlines()[0]
    return shards.CacheError(
        f"{out}: writing the cache failed ({reason}); finished shards are kept, the one in "
        "progress was dropped: free space and run again to continue"
    )


def brogue_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("brogue")
    except PackageNotFoundError:
        return "unknown"


def _clip_meta(clip: Prepared, extra_columns: Sequence[str]) -> shards.ClipMeta:
    source = clip.source
    return shards.ClipMeta(
        source.key, source.label, source.speaker, clip.seconds, clip.content_hash,
        {name: source.extra.get(name, "") for name in extra_columns},
        clip.file_size, clip.file_mtime_ns,
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
