"""The extraction run: clips -> an encoder -> shards, resumable and bounded in memory.

Worker processes (`decode.py`) hash, decode and resample while the main process runs the
encoder, so I/O hides behind compute; files reach their frames through the one path
(`frames.file_pieces`). Each piece's frames go into the current shard as they come (a long
recording is never held whole); once the shard holds
`shard_frames` frames it is published atomically and the manifest is rewritten, so a crash
loses at most the shard in progress. The cache's one writer (`brogue.cache.CacheWriter`) is
held throughout: a rerun skips clips whose file is unchanged (same size and modification
time, or else same content hash) before any decoding or encoder work.

That is the local executor. `run` itself only holds the writer and turns the executor's
`Outcome`s into the report and the manifest, so another executor (`ray_executor.py`, a Ray
cluster) writes the same cache the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from tqdm import tqdm

from brogue.cache import (
    CachedFile,
    CacheError,
    CacheWriter,
    ClipMeta,
    ShardSpec,
    ShardWriter,
    refuse_if_busy,
)

from .corpus import ClipSource
from .decode import DEFAULT_WORKERS, Prepared
from .engine import EncodedFrames, encoder_record
from .frames import PieceFrames, file_pieces
from .grid import FrameGrid

if TYPE_CHECKING:  # importing the engines here would pull Keras into every decode worker
    from .engine import Encoder

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

    spec: ShardSpec
    shard_frames: int

    @property
    def out(self) -> Path:
        return self.spec.directory


@dataclasses.dataclass(frozen=True)
class Job:
    """One run's work: the corpus, the encoder's grid (which long clips' blocks follow), what
    the cache already holds, and where shards go."""

    sources: Sequence[ClipSource]
    grid: FrameGrid
    cached: Mapping[str, CachedFile]
    output: Output


# Turns a job into outcomes; runs while `run` holds the writer lock, and must have stopped
# writing when its iterator is closed.
Executor = Callable[[Job], Generator[Outcome, None, None]]


def run(
    sources: Sequence[ClipSource],
    encoder: Encoder,
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

    `executor` does the work (default: `local_executor(encoder, workers)`, this machine);
    `encoder` names the producer in the cache either way. Refuses at once
    (`CacheBusyError`) while another process writes `out`.
    """
    out = Path(out)
    refuse_if_busy(out)
    extra_columns = tuple(sorted({name for source in sources for name in source.extra}))
    score_names = None if encoder.score_names is None else tuple(encoder.score_names)
    spec = ShardSpec(out, encoder_record(encoder), score_names, embedding_dtype, extra_columns)
    with CacheWriter(out, spec, parameters) as writer:
        outcomes = (executor or local_executor(encoder, workers))(
            Job(sources, encoder.grid, writer.cached, Output(spec, shard_frames)))
        return _report(writer, outcomes, len(sources), progress)


def _report(writer: CacheWriter, outcomes: Generator[Outcome, None, None], total: int,
            progress: bool) -> RunReport:  # fmt: skip
    report = RunReport(writer.directory)
    bar = tqdm(total=total, unit="clip", disable=None if progress else True,
               smoothing=0.05)  # disable=None: no bar when stderr is not a terminal
    started = next_manifest = time.monotonic()
    try:
        for outcome in outcomes:
            if outcome.shard:
                report.shards_written += 1
                # Rewriting reads every shard's clip table: at most ~10 % of the run's time.
                if time.monotonic() >= next_manifest:
                    began = time.monotonic()
                    writer.write_manifest(report.failures)
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
        raise _disk_error(writer.directory, error) from None
    finally:
        outcomes.close()  # the executor stops writing before the lock is released
        bar.close()
        # Also after a crash or Ctrl-C: the failures so far and the finished shards.
        try:
            writer.write_manifest(report.failures)
        except OSError as error:
            raise _disk_error(writer.directory, error) from None
    return report


def local_executor(encoder: Encoder, workers: int = DEFAULT_WORKERS) -> Executor:
    """This machine: `workers` processes decode, the encoder runs here, one shard at a time."""
    return functools.partial(_local_outcomes, encoder=encoder, workers=workers)


def _local_outcomes(job: Job, encoder: Encoder, workers: int) -> Generator[Outcome, None, None]:
    pieces = file_pieces(encoder, job.sources, workers, job.cached)
    sink = ShardSink(job.output)
    try:
        for piece in pieces:
            yield from sink.add(piece)
        yield from sink.close()
    finally:
        pieces.close()  # stops the decode workers now, also when the run failed
        sink.discard()


def skipped_outcome(clip: Prepared) -> Outcome:
    """The outcome of a clip that reached no encoder: cached, or failed."""
    return Outcome(str(clip.source.path), cached=clip.cached, failure=clip.failure)


class ShardSink:
    """Files' frames into shards, piece by piece, each shard published once it holds
    `shard_frames` frames of whole clips.

    Several sinks, in several processes, may write one cache: each publishes under a free name.
    """

    def __init__(self, output: Output) -> None:
        self.output = output
        self._writer: ShardWriter | None = None

    def add(self, piece: PieceFrames) -> list[Outcome]:
        """Nothing for a piece before a file's last; then the file's outcome, followed by the
        shard's if the file filled it."""
        clip, frames = piece.clip, piece.frames
        if frames is None:
            if clip.failure and self._writer is not None:
                self._writer.drop_frames()  # the earlier pieces of a file whose piece failed
            return [skipped_outcome(clip)]
        if self._writer is None:
            self._writer = self.output.spec.new_shard()
        if clip.piece == 0:
            self._writer.drop_frames()  # a file begun again (its decoder crashed)
        self._writer.add_frames(*_stored(frames))
        if not clip.last:
            return []
        count = self._writer.end_clip(_clip_meta(clip, self.output.spec.extra_columns))
        done = [Outcome(str(clip.source.path), clip.seconds, count)]
        if self._writer.frames >= self.output.shard_frames:
            done += self.close()
        return done

    def close(self) -> list[Outcome]:
        """Publish the shard in progress, if it holds any clip."""
        writer, self._writer = self._writer, None
        if writer is None:
            return []
        if not writer.clips:
            writer.discard()
            return []
        return [Outcome(str(writer.close()), shard=True)]

    def discard(self) -> None:
        """Drop the shard in progress (after an error or an interruption)."""
        if self._writer is not None:
            self._writer.discard()
            self._writer = None


def _stored(frames: EncodedFrames) -> tuple:
    """What a shard keeps of a piece's frames (not the log-mel, which is for plots)."""
    return frames.embeddings, frames.speech, frames.scores


def _disk_error(out: Path, error: OSError) -> CacheError:
    """A failed write as one line: finished shards are intact, the shard in progress is not."""
    reason = error.strerror or str(error).splitlines()[0]
    return CacheError(
        f"{out}: writing the cache failed ({reason}); finished shards are kept, the one in "
        "progress was dropped: free space and run again to continue"
    )


def _clip_meta(clip: Prepared, extra_columns: Sequence[str]) -> ClipMeta:
    source = clip.source
    return ClipMeta(
        source.key, source.label, source.speaker, clip.seconds, clip.content_hash,
        {name: source.extra.get(name, "") for name in extra_columns},
        clip.file_size, clip.file_mtime_ns,
    )
