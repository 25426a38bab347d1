"""`hf:MODEL[@LAYER]` behind the Encoder protocol: clips in, frames on the grid out, in order.

The clips go to the network in calls of about SAMPLES_PER_CALL samples: all of them at once
where the model's inputs allow clips of different lengths in one call, else one call per
length (`inputs.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np

from .brogue_api import BrogueError, EncodedFrames
from .grid import GRID, frame_counts, pool
from .model import load
from .spec import parse

Key = TypeVar("Key")
# Audio per network call: MEASURED below.
SAMPLES_PER_CALL = 64 * 16000


class HFEncoder:
    precision = "fp32"
    score_names = None

    def __init__(self, name: str, runtime: str = "auto") -> None:
        loaded = load(parse(name))
        from .network import load_network, resolve

        if loaded.features.sampling_rate != GRID.sample_rate:
            raise BrogueError(f"{loaded.name}: the model hears {loaded.features.sampling_rate} Hz "
                              f"audio, and brogue's clips are {GRID.sample_rate} Hz")
        self._loaded = loaded
        self.name, self.handle, self.fingerprint = loaded.name, loaded.handle, loaded.fingerprint
        self.window_s, self.hop_s = GRID.window_s, GRID.hop_s
        self.embedding_size = loaded.hidden_size
        self.params = {"layer": loaded.layer, "pool": "mean",
                       "do_normalize": bool(getattr(loaded.features, "do_normalize", False))}
        self._window = GRID.model_frames(GRID.window_s, loaded.inputs.stride)
        self._hop = GRID.model_frames(GRID.hop_s, loaded.inputs.stride)
        example = loaded.inputs.batch(loaded.features, [np.zeros(GRID.sample_rate, np.float32)] * 2,
                                      GRID.sample_rate)
        self.network = load_network(loaded.network, resolve(runtime), example,
                                    f"{loaded.fingerprint}-layer{loaded.layer}")
        self.runtime = self.network.runtime

    def stream(self, clips: Iterable[tuple[Key, np.ndarray]]
               ) -> Iterator[tuple[Key, EncodedFrames]]:
        for group in _groups(clips):
            keys = [key for key, _ in group]
            yield from zip(keys, self.encode([waveform for _, waveform in group]), strict=True)

    def encode(self, waveforms: Sequence[np.ndarray]) -> list[EncodedFrames]:
        """The frames of each waveform (16 kHz mono float32), in as few calls as allowed."""
        frames: list[EncodedFrames | None] = [None] * len(waveforms)
        for indices in self._calls([len(waveform) for waveform in waveforms]):
            for index, states in zip(indices, self._states([waveforms[i] for i in indices]),
                                     strict=True):
                embeddings = pool(states, int(frame_counts(np.array([len(waveforms[index])]))[0]),
                                  self._window, self._hop)
                # All frames are speech until the shared speech rule is plugged in.
                frames[index] = EncodedFrames(embeddings, np.ones(len(embeddings), bool), None)
        return frames

    def _calls(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices of the clips of each network call: all at once where they may share one,
        else one call per distinct length."""
        if self._loaded.inputs.shares_calls:
            return [list(range(len(lengths)))]
        by_length: dict[int, list[int]] = {}
        for index, length in enumerate(lengths):
            by_length.setdefault(length, []).append(index)
        return list(by_length.values())

    def _states(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each clip's model frames [T, D] of the kept layer, from one network call."""
        inputs = self._loaded.inputs
        states = self.network(*inputs.batch(self._loaded.features, waveforms, GRID.sample_rate))
        return [row[: inputs.count(len(waveform))] for row, waveform in zip(states, waveforms,
                                                                            strict=True)]


def _groups(clips: Iterable[tuple[Key, np.ndarray]]) -> Iterator[list[tuple[Key, np.ndarray]]]:
    """Consecutive clips of about SAMPLES_PER_CALL samples in all (a longer clip alone)."""
    group: list[tuple[Key, np.ndarray]] = []
    samples = 0
    for key, waveform in clips:
        if group and samples + len(waveform) > SAMPLES_PER_CALL:
            yield group
            group, samples = [], 0
        group.append((key, waveform))
        samples += len(waveform)
    if group:
        yield group
