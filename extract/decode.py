"""The worker side of extraction: hash, decode and resample.

Kept free of Keras and TensorFlow, so that spawned workers start in a fraction of
a second and leave the cores to YAMNet. The log-mel front end runs in the main
process, in the engine, so that cache, `predict` and `frames()` share one STFT.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from .audio import YAMNET_SAMPLE_RATE, AudioError, load_audio
from .corpus import ClipSource
from .shards import hash_file

DEFAULT_WORKERS = 1  # decoding takes a small part of YAMNet's time; a second steals its cores
TASKS_PER_WORKER = 8  # decoded clips waiting per worker: keeps YAMNet fed, memory bounded


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What a worker hands back for one clip."""

    source: ClipSource
    content_hash: str = ""
    cached: bool = False
    failure: str = ""
    seconds: float = 0.0
    waveform: np.ndarray | None = None  # float32 mono 16 kHz, when decoded


# Set once per worker process by `_init_worker`, so tasks stay small.
_worker_cached: frozenset[tuple[str, str]] = frozenset()  # (path, content_hash)


def _init_worker(cached: frozenset[tuple[str, str]]) -> None:
    global _worker_cached
    _worker_cached = cached


def prepare(source: ClipSource) -> Prepared:
    """Hash, decode and resample one clip, unless it is cached already."""
    try:
        content_hash = hash_file(source.path)
    except OSError as error:
        return Prepared(source, failure=f"{source.path}: {error.strerror or error}")
    if (str(source.path), content_hash) in _worker_cached:
        return Prepared(source, content_hash, cached=True)
    try:
        waveform = load_audio(source.path)
    except AudioError as error:
        return Prepared(source, content_hash, failure=str(error))
    return Prepared(source, content_hash, seconds=len(waveform) / YAMNET_SAMPLE_RATE,
                    waveform=waveform)


def prepared_in_order(
    sources: Sequence[ClipSource], workers: int, cached: frozenset[tuple[str, str]]
) -> Iterator[Prepared]:
    """`prepare` over every clip, in order, with a bounded number of clips in flight.

    A clip whose decoding kills its worker process (a crash inside a codec) is
    reported as failed, and the run goes on with a fresh pool.
    """
    if workers == 0:
        _init_worker(cached)
        yield from map(prepare, sources)
        return
    start_pool = functools.partial(_start_pool, workers, cached)
    remaining = iter(sources)
    pending: collections.deque[tuple[ClipSource, Future]] = collections.deque()
    pool = start_pool()
    try:
        while True:
            for source in itertools.islice(remaining, workers * TASKS_PER_WORKER - len(pending)):
                pending.append((source, pool.submit(prepare, source)))
            if not pending:
                return
            source, future = pending.popleft()
            try:
                yield future.result()
            except BrokenProcessPool:
                # The dead worker took every clip in flight with it; retry each alone.
                pool.shutdown(cancel_futures=True)
                for orphan in [source, *(queued for queued, _ in pending)]:
                    yield _prepare_alone(orphan, start_pool)
                pending.clear()
                pool = start_pool()
    finally:
        pool.shutdown(cancel_futures=True)


def _start_pool(workers: int, cached: frozenset[tuple[str, str]]) -> ProcessPoolExecutor:
    # spawn, not fork: the parent already runs TensorFlow's threads.
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, context, _init_worker, (cached,))


def _prepare_alone(source: ClipSource, start_pool) -> Prepared:
    with start_pool() as pool:
        try:
            return pool.submit(prepare, source).result()
        except BrokenProcessPool:
            return Prepared(source, failure=f"{source.path}: the decoder crashed reading it")
