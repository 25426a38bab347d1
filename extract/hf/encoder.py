"""`hf:MODEL[@LAYER]` behind the Encoder protocol: clips in, frames on the grid out, in order.

The clips come in groups of about SAMPLES_PER_CALL samples; each group goes to the network in
calls of clips sorted by length, padded to the longest in the call (every clip to 30 s for
Whisper), at most SAMPLES_PER_CALL padded samples per call. A model that changes its output
when padded (no attention mask: wav2vec2-base, HuBERT base) gets calls of one length only,
such as a long recording's 16 s blocks (`inputs.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from brogue.errors import BrogueError
from brogue.extract.engine import EncodedFrames, clip_groups
from brogue.extract.runtime import TORCH_RUNTIMES, resolve
from brogue.extract.state_grid import GRID, pool
from brogue.extract.vad import SileroVad

from .model import describe
from .network import load_network
from .spec import parse

if TYPE_CHECKING:
    from brogue.extract.engine import EngineSpec
    from brogue.extract.grid import FrameGrid

Key = TypeVar("Key")
# Padded audio per network call. Batching does not pay on a CPU: wav2vec2-base's architecture in
# OpenVINO ran at 1.5-2.1 audio-s/s batched and 1.7-2.3 one clip per call (two runs on 2 busy
# cores), so a call is kept small: two of a long recording's blocks, one Whisper window. Unsorted
# calls, 3-7 s clips padded to a 16 s block, had run at 0.7 against 1.7.
SAMPLES_PER_CALL = 33 * 16000


class HFEncoder:
    precision = "fp32"
    score_names = None

    def __init__(self, name: str, runtime: str = "auto",
                 speech: Callable[[np.ndarray, FrameGrid], np.ndarray] | None = None) -> None:
        # The OpenVINO runtime, which `auto` means, ran wav2vec2-base's architecture at 1.5-2.3
        # audio-s/s against torch's 0.5-0.9 on 2 busy cores (fp32; `python -m dev.bench_hf`).
        runtime = resolve(runtime, self.precision, TORCH_RUNTIMES, (self.precision,))
        model = describe(parse(name))
        if model.sampling_rate != GRID.sample_rate:
            raise BrogueError(f"{model.name}: the model hears {model.sampling_rate} Hz "
                              f"audio, and brogue's clips are {GRID.sample_rate} Hz")
        self._inputs = model.inputs
        self.name, self.handle = model.name, model.handle
        self.grid = GRID.frames
        # Which frames are speech: the rule of encoders without scores unless another is given.
        self.speech = speech or SileroVad()
        self.embedding_size = model.hidden_size
        self.params = {"layer": model.layer, "pool": "mean",
                       "do_normalize": model.inputs.normalize}
        self._window = GRID.model_frames(GRID.window_s, model.inputs.stride)
        self._hop = GRID.model_frames(GRID.hop_s, model.inputs.stride)
        example = model.inputs.batch([np.zeros(GRID.sample_rate, np.float32)] * 2,
                                     GRID.sample_rate)
        self.network, self.fingerprint = load_network(model, runtime, example)
        self.runtime = self.network.runtime

    def stream(self, clips: Iterable[tuple[Key, np.ndarray]]
               ) -> Iterator[tuple[Key, EncodedFrames]]:
        for group in clip_groups(clips, SAMPLES_PER_CALL):
            keys = [key for key, _ in group]
            yield from zip(keys, self.encode([waveform for _, waveform in group]), strict=True)

    def encode(self, waveforms: Sequence[np.ndarray]) -> list[EncodedFrames]:
        """The frames of each waveform (16 kHz mono float32), in as few calls as allowed."""
        lengths = [len(waveform) for waveform in waveforms]
        counts = self.grid.frame_counts(np.array(lengths))
        frames: list[EncodedFrames | None] = [None] * len(waveforms)
        for indices in self._calls(lengths):
            for index, states in zip(indices, self._states([waveforms[i] for i in indices]),
                                     strict=True):
                embeddings = pool(states, int(counts[index]), self._window, self._hop)
                speech = self.speech(waveforms[index], self.grid)
                frames[index] = EncodedFrames(embeddings, speech, None)
        return frames

    def _calls(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices of the clips of each network call: sorted by length, a new call when the
        padded samples would pass SAMPLES_PER_CALL, or at each new length where clips of
        different lengths may not share a call."""
        inputs = self._inputs
        calls: list[list[int]] = []
        for index in sorted(range(len(lengths)), key=lambda index: lengths[index]):
            call = calls[-1] if calls else []
            if not call or (len(call) + 1) * inputs.padded(lengths[index]) > SAMPLES_PER_CALL \
                    or not inputs.shares_calls and lengths[call[0]] != lengths[index]:
                calls.append(call := [])
            call.append(index)
        return calls

    def _states(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each clip's model frames [T, D] of the kept layer, from one network call."""
        inputs = self._inputs
        states = self.network(*inputs.batch(waveforms, GRID.sample_rate))
        return [row[: inputs.count(len(waveform))] for row, waveform in zip(states, waveforms,
                                                                            strict=True)]


def from_spec(spec: EngineSpec) -> HFEncoder:
    """`spec.encoder`, a name hf:MODEL[@LAYER], as `spec` asks for it (its loader in
    `extract/encoders.py`, which refuses settings other than fp32 and its own batching)."""
    return HFEncoder(spec.encoder, spec.runtime)
