"""Requests that arrive together go through the engine together.

One thread owns the model. It takes the first waiting clip, waits `window_s` for others, and
hands all of them (every clip that waited while the last batch ran, too) to the engine in one
stream, which batches their patches across clips as extraction batches across files, and to
the head in one call. A lone request pays the window once; sixteen at once share the
network's batches and the head's call instead of paying for sixteen of each.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

import numpy as np

Result = TypeVar("Result")
# Long enough for clients that were released together to land in one batch; short beside the
# 0.1-0.3 s a 3 s clip spends in the engine.
DEFAULT_WINDOW_S = 0.005
# Clips per batch: sixteen minute-long clips are 61 MB of waveform and 2,000 patches.
DEFAULT_MAX_CLIPS = 16

_STOP = object()


class Batcher(Generic[Result]):
    """Runs `work` on batches of (name, waveform) on a thread of its own; `predict` awaits one
    clip's result. A failure of a batch fails each of its clips with the same error."""

    def __init__(self, work: Callable[[Sequence[tuple[str, np.ndarray]]], list[Result]],
                 window_s: float = DEFAULT_WINDOW_S, max_clips: int = DEFAULT_MAX_CLIPS):
        self._work, self._window_s, self._max_clips = work, window_s, max_clips
        self._waiting: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="brogue-batcher", daemon=True)
        self._thread.start()

    async def predict(self, name: str, waveform: np.ndarray) -> Result:
        future: Future[Result] = Future()
        self._waiting.put((name, waveform, future))
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self._waiting.put(_STOP)
        self._thread.join()

    def _serve(self) -> None:
        while (first := self._waiting.get()) is not _STOP:
            batch = [first]
            stop = self._gather(batch)
            self._run(batch)
            if stop:
                return

    def _gather(self, batch: list) -> bool:
        """Add the clips that come within the window to `batch`; whether close() was called."""
        try:
            while len(batch) < self._max_clips:
                item = self._waiting.get(timeout=self._window_s)
                if item is _STOP:
                    return True
                batch.append(item)
        except queue.Empty:
            pass
        return False

    def _run(self, batch: list) -> None:
        live = [(name, waveform, future) for name, waveform, future in batch
                if future.set_running_or_notify_cancel()]  # fmt: skip
        if not live:
            return
        try:
            results = self._work([(name, waveform) for name, waveform, _ in live])
        except Exception as error:  # noqa: BLE001 - handed to every request of the batch
            for *_, future in live:
                future.set_exception(error)
            return
        for (*_, future), result in zip(live, results, strict=True):
            future.set_result(result)
