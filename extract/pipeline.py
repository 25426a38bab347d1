"""The extraction run: clips -> YAMNet -> shards, resumable and bounded in memory.

Worker processes (`decode.py`) hash, decode and resample while the main process
runs YAMNet (front end and network), so I/O hides behind compute; the engine packs
the patches of consecutive clips into full batches across clip boundaries. A long
recording arrives as waveform pieces whose frames are appended to its clip as
they come, so memory holds a few blocks of it, never the whole. Finished clips go
into the current shard; once it holds `shard_frames` frames it is published
atomically and the manifest is rewritten, so a crash loses at most the shard in
progress. The run holds the cache's writer lock throughout. A rerun skips clips
whose file is unchanged (same size and modification time, or else same content
hash) before any decoding or YAMNet work.

That is the local executor. `run` itself only holds the lock, lists what is cached,
and turns the executor's `Outcome`s into the report and the manifest, so another
executor (`ray_executor.py`, a Ray cluster) writes the same cache the same way.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

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


class Outcome(NamedTuple):
    """What became of one clip (extracted, cached or failed), or, with `shard`, a published shard.

    The events both executors hand the driver, so reporting, the progress bar and the
    manifest have one home (`run`); the Ray executor ships them back from its actors as rows.
    """

    path: str  # the clip's file, or the published shard's
    seconds: float = 0.0  # an extracted clip's audio
    frames: int = 0  # an extracted clip's frames
    cached: bool = False
    failure: str = ""  # why the clip failed, in one line
    shard: bool = False


@dataclasses.dataclass(frozen=True)
class Output:
    """Where and how clips become shards: what every shard writer of one run shares."""

    out: Path
    attrs: shards.ShardAttrs
    shard_frames: int
    embedding_dtype: str
    extra_columns: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Job:
    """One run's work: the corpus, what the cache already holds, and where shards go."""

    sources: Sequence[ClipSource]
    cached: Mapping[str, shards.CachedFile]
    output: Output


# Turns a job into outcomes; runs while `run` holds the writer lock, and must have stopped
# writing when its iterator is closed.
Executor = Callable[[Job], Generator[Outcome, None, None]]


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
    executor: Executor | None = None,
) -> RunReport:
    """Extract every clip not yet cached in `out`; returns what was done.

    `executor` does the work (default: `local_executor(engine, workers)`, this machine);
    `engine` names the producer in the cache either way. Refuses at once
    (`CacheBusyError`) while another process writes `out`.
    """
    out = Path(out)
    _check_writable(out)
    with writer_lock(out):
        remove_orphans(out)
        return _run_locked(sources, engine, out, shard_frames, embedding_dtype, parameters,
                           progress, executor or local_executor(engine, workers))  # fmt: skip


def remove_orphans(out: Path) -> list[Path]:
    """Delete the temporary files a killed writer left; only the lock holder may call this."""
    orphans = sorted(path for path in out.iterdir() if atomic.is_temporary(path))
    for path in orphans:
        path.unlink()
    return orphans


def _run_locked(sources: Sequence[ClipSource], engine: Engine, out: Path, shard_frames: int,
                embedding_dtype: str, parameters: dict | None, progress: bool,
                executor: Executor) -> RunReport:  # fmt: skip
    attrs = shards.ShardAttrs(engine.handle, engine.fingerprint, engine.params.to_json(),
                              brogue_version(), engine.runtime, engine.precision)
    _check_same_yamnet(out, engine)
    extra_columns = tuple(sorted({name for source in sources for name in source.extra}))
    output = Output(out, attrs, shard_frames, embedding_dtype, extra_columns)
    outcomes = executor(Job(sources, shards.cached_clips(out, attrs), output))
    report = RunReport(out)
    bar = tqdm(total=len(sources), unit="clip", disable=None if progress else True,
               smoothing=0.05)  # disable=None: no bar when stderr is not a terminal
    started = next_manifest = time.monotonic()
    try:
        for outcome in outcomes:
            if outcome.shard:
                report.shards_written += 1
                # Rewriting reads every shard's clip table: at most ~10 % of the run's time.
                if time.monotonic() >= next_manifest:
                    began = time.monotonic()
                    _write_manifest(out, engine, embedding_dtype, parameters, report)
                    next_manifest = began + 10 * (time.monotonic() - began)
                continue
            if outcome.cached:
                report.cached += 1
            elif outcome.failure:
                report.failures.append({"path": outcome.path, "reason": outcome.failure})
            else:
                report.clips, report.frames = report.clips + 1, report.frames + outcome.frames
                report.seconds += outcome.seconds
                rate = report.seconds / max(time.monotonic() - started, 1e-9)
                bar.set_postfix_str(f"{rate:.0f} audio-s/s", refresh=False)
            bar.update()
    except OSError as error:
        raise _disk_error(out, error) from None
    finally:
        outcomes.close()  # the executor stops writing before the lock is released
        bar.close()
        # Also after a crash or Ctrl-C: the failures so far and the finished shards.
        try:
            _write_manifest(out, engine, embedding_dtype, parameters, report)
        except OSError as error:
            raise _disk_error(out, error) from None
    return report


def local_executor(engine: Engine, workers: int = DEFAULT_WORKERS) -> Executor:
    """This machine: `workers` processes decode, YAMNet runs here, one shard at a time."""
    return functools.partial(_local_outcomes, engine=engine, workers=workers)


def _local_outcomes(job: Job, engine: Engine, workers: int) -> Generator[Outcome, None, None]:
    skipped: list[Outcome] = []  # cached and failed clips, reported in the order they come
    prepared = prepared_in_order(job.sources, workers, job.cached)

    def to_compute() -> Iterator[Prepared]:
        for clip in prepared:
            if clip.waveform is not None:
                yield clip
            else:
                skipped.append(not_computed(clip))

    sink = ShardSink(job.output)
    try:
        for clip, scores, embeddings in computed(engine, to_compute()):
            yield from skipped
            skipped.clear()
            yield from sink.add(clip, scores, embeddings)
        yield from skipped
        yield from sink.close()
    finally:
        prepared.close()  # stops the decode workers now, also when the run failed
        sink.discard()


def not_computed(clip: Prepared) -> Outcome:
    """The outcome of a clip that needs no YAMNet: cached, or failed."""
    return Outcome(str(clip.source.path), cached=clip.cached, failure=clip.failure)


class ShardSink:
    """Computed clips into shards, each published once it holds `shard_frames` frames.

    A clip's frames may come in pieces; a clip whose later pieces never come (its file
    failed part way through) is dropped when the next clip begins, or at `close`. Several
    sinks, in several processes, may write one cache: each publishes under a free name.
    """

    def __init__(self, output: Output) -> None:
        self.output = output
        self._writer: shards.ShardWriter | None = None

    def add(self, clip: Prepared, scores: np.ndarray, embeddings: np.ndarray) -> list[Outcome]:
        """Add a computed clip or piece; returns its outcome once the clip is complete,
        followed by the shard's if that filled it."""
        if clip.piece == 0:
            if self._writer is None:
                self._writer = self._new_writer()
            self._writer.abort_clip()  # the open clip's later pieces never came: it failed
            self._writer.begin_clip(_clip_meta(clip, self.output.extra_columns))
        self._writer.add_frames(scores[: clip.frames], embeddings[: clip.frames])
        if not clip.last:
            return []
        frames = self._writer.end_clip()
        done = [Outcome(str(clip.source.path), clip.seconds, frames)]
        if self._writer.frames >= self.output.shard_frames:
            done += self.close()
        return done

    def close(self) -> list[Outcome]:
        """Publish the shard in progress, if it holds any clip."""
        writer, self._writer = self._writer, None
        if writer is None:
            return []
        writer.abort_clip()
        if not writer.clips:
            writer.discard()
            return []
        return [Outcome(str(writer.close().path), shard=True)]

    def discard(self) -> None:
        """Drop the shard in progress (after an error or an interruption)."""
        if self._writer is not None:
            self._writer.discard()
            self._writer = None

    def _new_writer(self) -> shards.ShardWriter:
        output = self.output
        while True:  # another sink may publish the next index meanwhile: then take the one after
            try:
                return shards.ShardWriter(output.out, shards.next_shard_index(output.out),
                                          output.attrs, output.embedding_dtype,
                                          output.extra_columns)  # fmt: skip
            except shards.CacheError:
                continue


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
