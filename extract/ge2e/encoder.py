"""GE2E as an encoder of the cache (`extract/engine.py`): clips in, frames out, in order.

Each clip is cut into windows on the grid (`features.windows`, numpy), the windows of several
clips go through the network together, and each clip gets its embeddings back. GE2E has no
class scores: which frames are speech is decided by `speech`, the rule of encoders without
scores (Silero VAD, `extract/vad.py`) unless another is handed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from brogue.extract.engine import EncodedFrames, frames_of
from brogue.extract.grid import FrameGrid
from brogue.extract.runtime import KERAS_RUNTIMES, resolve
from brogue.extract.vad import SileroVad

from . import runtime as runtimes
from .features import windows
from .params import PARAMS, Params
from .weights import import_weights, resolve_handle

if TYPE_CHECKING:
    from brogue.extract.engine import EngineSpec

# Windows per network call. OpenVINO fp32 on 2 busy cores (`python -m dev bench ge2e`, 24
# clips of ~4 s): 37 audio-s/s at 32, 39 at 64, 39 at 128.
DEFAULT_BATCH_WINDOWS = 64
Key = TypeVar("Key")
# (waveform, grid) -> [frames] bool
SpeechRule = Callable[[np.ndarray, FrameGrid], np.ndarray]


class GE2EEncoder:
    name = "ge2e"
    score_names = None

    def __init__(self, handle: str | None = None, runtime: str = "auto",
                 precision: str = "fp32", batch_size: int = DEFAULT_BATCH_WINDOWS,
                 params: Params = PARAMS, speech: SpeechRule | None = None):  # fmt: skip
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1 window, got {batch_size}")
        runtime = resolve(runtime, precision, KERAS_RUNTIMES)  # before the slow import
        imported = import_weights(resolve_handle(handle), params)
        self.handle, self.fingerprint = imported.handle, imported.fingerprint
        self.params, self.batch_size = params, batch_size
        self.speech = speech or SileroVad()
        self.network = runtimes.load_network(imported, params, runtime, precision, batch_size)
        self.runtime, self.precision = self.network.runtime, self.network.precision

    @property
    def grid(self) -> FrameGrid:
        return self.params.grid

    @property
    def embedding_size(self) -> int:
        return self.params.embedding_size

    def stream(self, clips: Iterable[tuple[Key, np.ndarray]]
               ) -> Iterator[tuple[Key, EncodedFrames]]:  # fmt: skip
        """Clips gathered until they fill a batch of windows, then through the network."""
        waiting: list[tuple[Key, np.ndarray, np.ndarray]] = []
        count = 0
        for key, waveform in clips:
            waiting.append((key, waveform, windows(waveform, self.params)))
            count += len(waiting[-1][2])
            if count >= self.batch_size:
                yield from self._encode(waiting)
                waiting, count = [], 0
        yield from self._encode(waiting)

    def frames(self, waveforms: Sequence[np.ndarray]) -> list[EncodedFrames]:
        return frames_of(self, waveforms)

    def _encode(self, clips: list[tuple[Key, np.ndarray, np.ndarray]]
                ) -> Iterator[tuple[Key, EncodedFrames]]:  # fmt: skip
        if not clips:
            return
        (embeddings,) = self.network(np.concatenate([stacked for _, _, stacked in clips]))
        bounds = np.cumsum([len(stacked) for _, _, stacked in clips])[:-1]
        for (key, waveform, _), own in zip(clips, np.split(embeddings, bounds), strict=True):
            yield key, EncodedFrames(own, self.speech(waveform, self.grid))


def from_spec(spec: EngineSpec) -> GE2EEncoder:
    """GE2E as `spec` asks for it (its loader in `extract/encoders.py`)."""
    batching = {"batch_size": spec.batch_size} if spec.batch_size else {}
    return GE2EEncoder(spec.handle, spec.runtime, spec.precision, **batching)
