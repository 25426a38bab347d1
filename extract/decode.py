"""The worker side of extraction: hash, decode and resample, a long recording in blocks.

Kept free of Keras and TensorFlow, so that spawned workers start in a fraction of
a second and leave the cores to the encoder. The encoder's front end runs in the main
process, in the engine, so that the cache, `predict` and the server share one front end.

A recording longer than one block reaches the encoder as pieces: waveform blocks on the
encoder's frame hop that overlap by the rest of a frame's window (YAMNet: blocks on the
0.48 s patch hop overlapping by 0.495 s), so each piece's frames are exactly the whole
recording's frames from that point on (a frame depends only on its own samples). Memory then
holds a few blocks at a time, whatever the recording's length. A waveform already decoded (the
server's) is cut into the same blocks (`waveform_pieces`).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple

import numpy as np

from brogue.cache import CachedFile, hash_file

from . import worker
from .audio import SAMPLE_RATE, AudioError, load_block, probe, resampled_length
from .corpus import ClipSource
from .grid import FrameGrid

# One worker decodes ~1,600 audio-s/s of 48 kHz speech (576 clips in 1.25 CPU-s), ahead of
# YAMNet even at bf16; a second steals its cores.
DEFAULT_WORKERS = 1
# Decoded clips or blocks waiting per worker: two of YAMNet's front-end calls (16 clips each),
# so the next call's clips decode while this one computes. At 8, YAMNet waited for decoding at
# every call (192 clips at bf16: 1.44 s against 1.24 s). Memory stays bounded: ~7 MB of 5 s clips.
TASKS_PER_WORKER = 32
# Frames per block of a long recording: 15.9 s of audio on YAMNet's grid, 1 MB at 16 kHz, about what
# the engine is tuned for (OpenSLR 83 clips are ~5 s), and small in the engine's 16-clip front-end
# calls (16 blocks of 2 min held 0.5 GB there). 32 patch hops, a power of two, so the Hub's float32
# patch count of a block is exactly 33.
FRAMES_PER_BLOCK = 33


class Block(NamedTuple):
    """Samples start:stop of the padded 16 kHz waveform, holding `frames` whole patches."""

    start: int
    stop: int
    frames: int


def blocks(num_samples: int, grid: FrameGrid) -> list[Block]:
    """The blocks that cover a waveform of `num_samples`, giving its frames exactly once."""
    total = grid.frame_count(num_samples)
    plan = []
    for first in range(0, total, FRAMES_PER_BLOCK):
        frames = min(FRAMES_PER_BLOCK, total - first)
        start = first * grid.hop_samples
        plan.append(Block(start, start + grid.padded_samples(frames), frames))
    return plan


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What a worker hands back for one clip, or for one piece of a long clip."""

    source: ClipSource
    content_hash: str = ""
    cached: bool = False
    failure: str = ""
    seconds: float = 0.0  # the whole clip's
    waveform: np.ndarray | None = None  # float32 mono 16 kHz, when decoded
    file_size: int = 0  # the file's, when it was hashed
    file_mtime_ns: int = 0
    piece: int = 0  # this piece's number, of `pieces`
    pieces: int = 1
    frames: int | None = None  # frames this piece gives; None: all the engine returns
    audio: tuple[int, int] = (0, 0)  # the file's (frames, sample rate), for reading pieces
    grid: FrameGrid | None = None  # the encoder's, which a long clip's blocks follow

    @property
    def last(self) -> bool:
        return self.piece == self.pieces - 1


def unchanged(source: ClipSource, cached: CachedFile | None) -> bool:
    """Whether the file still has the size and modification time it had when it was cached."""
    if cached is None:
        return False
    try:
        stat = os.stat(source.path)
    except OSError:
        return False
    return (stat.st_size, stat.st_mtime_ns) == (cached.file_size, cached.file_mtime_ns)


def prepare(source: ClipSource, grid: FrameGrid, cached_hash: str = "") -> Prepared:
    """Hash one clip and decode it, unless its hash is `cached_hash`.

    A clip longer than one block comes back without a waveform but with `pieces`:
    `prepare_piece` then reads each piece.
    """
    try:
        stat = os.stat(source.path)
        content_hash = hash_file(source.path)
    except OSError as error:
        return Prepared(source, failure=f"{source.path}: {error.strerror or error}")
    hashed = Prepared(source, content_hash, file_size=stat.st_size,
                      file_mtime_ns=stat.st_mtime_ns)  # fmt: skip
    if content_hash == cached_hash:
        return dataclasses.replace(hashed, cached=True)
    try:
        frames, sample_rate = probe(source.path)
        samples = resampled_length(frames, sample_rate)
        pieces = len(blocks(samples, grid))
        if pieces > 1:
            return dataclasses.replace(hashed, seconds=samples / SAMPLE_RATE,
                                       pieces=pieces, audio=(frames, sample_rate),
                                       grid=grid)  # fmt: skip
        waveform = load_block(source.path, 0, samples, frames, sample_rate)  # probed once
    except AudioError as error:
        return dataclasses.replace(hashed, failure=str(error))
    return dataclasses.replace(hashed, seconds=len(waveform) / SAMPLE_RATE,
                               waveform=waveform)  # fmt: skip


def prepare_piece(clip: Prepared, piece: int) -> Prepared:
    """Piece `piece` of a long clip that `prepare` planned: its block of the waveform."""
    frames, sample_rate = clip.audio
    samples = resampled_length(frames, sample_rate)
    block = blocks(samples, clip.grid)[piece]
    try:
        waveform = load_block(clip.source.path, block.start, min(block.stop, samples), frames,
                              sample_rate)  # fmt: skip
    except AudioError as error:
        return dataclasses.replace(clip, piece=piece, failure=str(error))
    return dataclasses.replace(clip, piece=piece, frames=block.frames,
                               waveform=_whole_block(waveform, block))  # fmt: skip


def _whole_block(samples: np.ndarray, block: Block) -> np.ndarray:
    # The last block ends in the zeros that pad the whole waveform to whole frames.
    return np.pad(samples, (0, block.stop - block.start - len(samples)))


def waveform_pieces(source: ClipSource, waveform: np.ndarray, grid: FrameGrid
                    ) -> Iterator[Prepared]:  # fmt: skip
    """A waveform already decoded (16 kHz mono float32) as `prepare` and `prepare_piece` give a
    file of the same samples: whole when it fits one block, else its blocks."""
    seconds = len(waveform) / SAMPLE_RATE
    plan = blocks(len(waveform), grid)
    if len(plan) <= 1:
        yield Prepared(source, seconds=seconds, waveform=waveform)
        return
    for piece, block in enumerate(plan):
        yield Prepared(source, seconds=seconds, piece=piece, pieces=len(plan),
                       frames=block.frames, grid=grid,
                       waveform=_whole_block(waveform[block.start : block.stop], block))


class _Inline(Executor):
    """Runs each task at once in this process: `workers=0`."""

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _done(result: Prepared) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future


def _start_pool(workers: int) -> Executor:
    if workers == 0:
        return _Inline()
    # spawn, not fork: the parent already runs TensorFlow's threads.
    return ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"),
                               worker.start, (os.getpid(),))  # fmt: skip


def prepared_in_order(
    sources: Sequence[ClipSource], grid: FrameGrid, workers: int,
    cached: Mapping[str, CachedFile],
) -> Iterator[Prepared]:
    """Every clip prepared, in order, a long one as its pieces; few clips and pieces in flight.

    `cached` maps a clip's key to its file as cached: a file with the same size and
    modification time is skipped without being hashed, and one whose bytes hash the same
    is skipped without being decoded. A clip whose decoding kills its worker process (a
    crash inside a codec) is reported as failed, and the run goes on with a fresh pool.
    """
    window = max(workers, 1) * TASKS_PER_WORKER
    remaining = iter(sources)
    pending: collections.deque[tuple[ClipSource, Future]] = collections.deque()
    pool = _start_pool(workers)
    try:
        while True:
            for source in itertools.islice(remaining, window - len(pending)):
                known = cached.get(source.key)
                if unchanged(source, known):
                    future = _done(Prepared(source, known.content_hash, cached=True))
                else:
                    future = pool.submit(prepare, source, grid, known.content_hash if known else "")
                pending.append((source, future))
            if not pending:
                return
            source, future = pending.popleft()
            try:
                clip = future.result()
                if clip.pieces == 1 or clip.cached or clip.failure:
                    yield clip
                else:
                    yield from _pieces(pool, clip, window)
            except BrokenProcessPool:
                # The dead worker took every task in flight with it; retry each clip alone.
                pool.shutdown(cancel_futures=True)
                for orphan in [source, *(queued for queued, _ in pending)]:
                    yield from _prepare_alone(orphan, grid, cached.get(orphan.key), workers)
                pending.clear()
                pool = _start_pool(workers)
    finally:
        pool.shutdown(cancel_futures=True)


def _pieces(pool: Executor, clip: Prepared, window: int) -> Iterator[Prepared]:
    """The pieces of a long clip, in order, `window` at most in flight; stops at a failed one."""
    numbers = iter(range(clip.pieces))
    in_flight: collections.deque[Future] = collections.deque()
    try:
        while True:
            for piece in itertools.islice(numbers, window - len(in_flight)):
                in_flight.append(pool.submit(prepare_piece, clip, piece))
            if not in_flight:
                return
            piece = in_flight.popleft().result()
            yield piece
            if piece.failure:
                return
    finally:
        for future in in_flight:
            future.cancel()


def _prepare_alone(source: ClipSource, grid: FrameGrid, cached: CachedFile | None, workers: int
                   ) -> Iterator[Prepared]:
    pool = _start_pool(max(workers, 1))
    try:
        clip = pool.submit(prepare, source, grid, cached.content_hash if cached else "").result()
        if clip.pieces == 1 or clip.cached or clip.failure:
            yield clip
        else:
            yield from _pieces(pool, clip, 1)
    except BrokenProcessPool:
        yield Prepared(source, failure=f"{source.path}: the decoder crashed reading it")
    finally:
        pool.shutdown(cancel_futures=True)
