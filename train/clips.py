"""Feed Keras whole clips from the shards: padded batches of (frames, speech, present).

Clip-level models see a clip at once. Each batch reads its clips from the shards (one HDF5 call
per clip) and pads them to the side's longest clip: Keras's TensorFlow adapter fixes a feed's
shapes from its first batches, so batches padded to their own longest fail once one is shorter.
(OpenSLR 83's clips are 2 to 15 s, at most about 30 frames.) A side that fits the RAM budget is
kept once read. When shuffling, each epoch draws its own clip order.

A fused corpus (`train.fusion`) feeds each clip from several caches, its streams: (frames,
speech, present) per stream, one after another, each padded on its own grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from brogue.cache import Cache


@dataclass(frozen=True)
class Stream:
    """Where one cache keeps the frames of each clip of a corpus (rows in the corpus's order)."""

    cache: Cache
    shard: np.ndarray
    frame_start: np.ndarray
    num_frames: np.ndarray

    def select(self, rows: np.ndarray) -> Stream:
        return Stream(self.cache, self.shard[rows], self.frame_start[rows], self.num_frames[rows])


class ClipFeed(keras.utils.PyDataset):
    """Batches of ((frames, speech, present) per stream, one-hot accents[, weights]) for chosen
    clips.

    Without shuffling, batches follow `clips`' order, so predictions line up with it.
    """

    def __init__(
        self,
        streams: Sequence[Stream],
        clips: np.ndarray,
        labels: np.ndarray,
        num_accents: int,
        batch_size: int,
        budget_bytes: int,
        shuffle: bool,
        seed: int,
        class_weight: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.streams = list(streams)
        self.clips = clips
        self._onehot = np.eye(num_accents, dtype=np.float32)[labels]
        self._weight = None if class_weight is None else class_weight.astype(np.float32)[labels]
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.longest = [int(stream.num_frames[clips].max()) for stream in self.streams]
        held = sum(int(stream.num_frames[clips].sum()) * (stream.cache.embedding_size * 4 + 1)
                   for stream in self.streams)  # fmt: skip
        self.resident = held <= budget_bytes
        self._kept: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.epoch = 0
        self._orders: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return math.ceil(len(self.clips) / self.batch_size)

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def _order(self, epoch: int) -> np.ndarray:
        """The clips of each batch of the epoch, batch after batch."""
        if epoch not in self._orders:
            order = self.clips
            if self.shuffle:
                order = np.random.default_rng([self.seed, epoch]).permutation(order)
            self._orders = {epoch: order}
        return self._orders[epoch]

    def _read(self, number: int, clip: int) -> tuple[np.ndarray, np.ndarray]:
        if (number, clip) in self._kept:
            return self._kept[number, clip]
        stream = self.streams[number]
        start = int(stream.frame_start[clip])
        stop = start + int(stream.num_frames[clip])
        frames = stream.cache.read_frames(int(stream.shard[clip]), start, stop,
                                          ("embeddings", "speech"))  # fmt: skip
        read = (frames["embeddings"], frames["speech"])
        if self.resident:
            self._kept[number, clip] = read
        return read

    def _padded(self, number: int, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        longest, width = self.longest[number], self.streams[number].cache.embedding_size
        frames = np.zeros((len(batch), longest, width), np.float32)
        speech = np.zeros((len(batch), longest), np.float32)
        present = np.zeros((len(batch), longest), np.float32)
        for row, clip in enumerate(batch):
            embeddings, is_speech = self._read(number, int(clip))
            frames[row, : len(is_speech)] = embeddings
            speech[row, : len(is_speech)] = is_speech
            present[row, : len(is_speech)] = 1.0
        return frames, speech, present

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        batch = self._order(self.epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        inputs = tuple(array for number in range(len(self.streams))
                       for array in self._padded(number, batch))  # fmt: skip
        if self._weight is None:
            return inputs, self._onehot[batch]
        return inputs, self._onehot[batch], self._weight[batch]
