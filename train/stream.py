"""Feed Keras one side of a split straight from the shards, within a RAM budget.

The frames of a side are cut into blocks: runs of at most `block_frames` of its rows in one
shard, read with one HDF5 call each. If the whole side fits in the budget it is read once and
only reshuffled each epoch. Otherwise every epoch shuffles the block order across all shards,
fills windows of blocks up to half the budget, and shuffles frames within each window, so at
most two windows (a batch may straddle two) and one block being read are ever held.

`FrameFeed` is a `keras.utils.PyDataset`, so it works under every Keras backend; the TF backend
runs it in a background thread, which overlaps reading with training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import keras
import numpy as np

from brogue.train.config import ConfigError

_LABEL_DTYPE = np.int16
_ORDER_DTYPE = np.int32


class FrameReader(Protocol):
    """What the feeds read frames through: `brogue.cache.Cache`."""

    embedding_size: int

    def read_frames(
        self, shard: int, start: int, stop: int, columns: Sequence[str]
    ) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class Block:
    """Rows of one shard read together, with the clip (table position) each row belongs to."""

    shard: int
    rows: np.ndarray  # int64, increasing, spanning at most block_frames
    clips: np.ndarray  # int64, same length


def make_blocks(
    clip_shard: np.ndarray,
    frame_start: np.ndarray,
    num_frames: np.ndarray,
    chosen: np.ndarray,
    block_frames: int,
) -> list[Block]:
    """Blocks covering the frames of the `chosen` clips (bool per clip), in shard and row order.

    A block spans at most `block_frames` shard rows, chosen or not, since that span is what one
    read loads: a side whose clips are scattered reads some rows it drops, never an unbounded run.
    """
    blocks: list[Block] = []
    for shard in np.unique(clip_shard[chosen]):
        clips = np.flatnonzero(chosen & (clip_shard == shard))
        clips = clips[np.argsort(frame_start[clips], kind="stable")]
        counts = num_frames[clips]
        # Each clip's rows, frame_start .. frame_start + num_frames, laid end to end.
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        rows = np.repeat(frame_start[clips], counts) + offsets
        owners = np.repeat(clips, counts)
        first = 0
        while first < len(rows):
            stop = int(np.searchsorted(rows, rows[first] + block_frames))
            blocks.append(Block(int(shard), rows[first:stop], owners[first:stop]))
            first = stop
    return blocks


def frame_labels(speech: np.ndarray, clip_labels: np.ndarray, not_speech: int) -> np.ndarray:
    """The example's rule: a speech frame gets its clip's accent, any other "Not a speech"."""
    return np.where(speech, clip_labels, not_speech).astype(_LABEL_DTYPE)


def read_span(
    reader: FrameReader, block: Block, columns: Sequence[str]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`columns` of the shard rows the block spans, and where its own rows sit in them."""
    start, stop = int(block.rows[0]), int(block.rows[-1]) + 1
    return reader.read_frames(block.shard, start, stop, columns=columns), block.rows - start


def read_speech(reader: FrameReader, blocks: Sequence[Block]) -> np.ndarray:
    """Every frame's speech mask in block order, without touching the embeddings."""
    parts = []
    for block in blocks:
        span, local = read_span(reader, block, ("speech",))
        parts.append(span["speech"][local])
    return np.concatenate(parts)


@dataclass
class _Window:
    embeddings: np.ndarray
    labels: np.ndarray
    order: np.ndarray | None  # None: frames in block order

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.embeddings, self.labels, self.order) if a is not None)


class FrameFeed(keras.utils.PyDataset):
    """Batches of (embeddings float32, one-hot labels[, weights]) for one side of a split.

    With `shuffle=False` frames come in block order, which is what evaluation pools by clip.
    With `class_weight` (one weight per class) each batch carries its frames' weights.
    `peak_bytes` records the most window and block memory held at once. Embeddings are held
    as float32, as `reader` returns them.
    """

    def __init__(
        self,
        reader: FrameReader,
        blocks: Sequence[Block],
        clip_labels: np.ndarray,
        num_classes: int,
        batch_size: int,
        budget_bytes: int,
        shuffle: bool,
        seed: int,
        class_weight: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.reader = reader
        self.blocks = list(blocks)
        self.clip_labels = clip_labels
        self.num_classes = num_classes
        self._onehot = np.eye(num_classes, dtype=np.float32)
        self.class_weight = None if class_weight is None else class_weight.astype(np.float32)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.frames = sum(len(block.rows) for block in self.blocks)
        self._sizes = np.array([len(block.rows) for block in self.blocks])
        self.embedding = embedding = np.dtype((np.float32, (reader.embedding_size,)))
        row_bytes = embedding.itemsize + np.dtype(_LABEL_DTYPE).itemsize
        row_bytes += np.dtype(_ORDER_DTYPE).itemsize if shuffle else 0
        budget_rows = budget_bytes // row_bytes
        # Reading a block holds its whole span, chosen rows or not.
        largest_block = max((int(b.rows[-1] - b.rows[0]) + 1 for b in self.blocks), default=0)
        self.resident = self.frames + largest_block <= budget_rows
        self.window_frames = self.frames if self.resident else (budget_rows - largest_block) // 2
        if not self.resident and self.window_frames < largest_block:
            raise ConfigError(
                f"a RAM budget of {budget_bytes / 2**20:.2f} MB cannot stream blocks of "
                f"{largest_block} frames; raise ram_budget_mb or lower block_frames"
            )
        self.epoch = 0
        self.peak_bytes = 0
        self._plans: dict[int, tuple[list[tuple[int, ...]], np.ndarray]] = {}
        self._data: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._windows: dict[tuple[int, int], _Window] = {}

    def __len__(self) -> int:
        return math.ceil(self.frames / self.batch_size)

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def _plan(self, epoch: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
        """The epoch's windows (block ids each) and the first frame position of each."""
        if epoch not in self._plans:
            order = np.arange(len(self.blocks))
            if self.shuffle and not self.resident:
                order = np.random.default_rng([self.seed, epoch]).permutation(order)
            windows: list[tuple[int, ...]] = []
            current: list[int] = []
            filled = 0
            for block in order.tolist():
                if current and filled + self._sizes[block] > self.window_frames:
                    windows.append(tuple(current))
                    current, filled = [], 0
                current.append(block)
                filled += self._sizes[block]
            windows.append(tuple(current))
            sizes = [self._sizes[list(window)].sum() for window in windows]
            self._plans = {epoch: (windows, np.cumsum([0, *sizes]))}
        return self._plans[epoch]

    def _load(self, blocks: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """The embeddings and labels of `blocks`, read into one preallocated array."""
        if blocks not in self._data:
            self._data.clear()  # Block sets change every streamed epoch; only resident reuses.
            count = self._sizes[list(blocks)].sum()
            embeddings = np.empty((count, *self.embedding.shape), self.embedding.base)
            labels = np.empty(count, _LABEL_DTYPE)
            position = 0
            for index in blocks:
                block = self.blocks[index]
                span, local = read_span(self.reader, block, ("embeddings", "speech"))
                stop = position + len(local)
                # take(out=...) copies the chosen rows without a temporary.
                np.take(span["embeddings"], local, axis=0, out=embeddings[position:stop])
                labels[position:stop] = frame_labels(
                    span["speech"][local], self.clip_labels[block.clips], self.num_classes - 1
                )
                self._note_bytes(span["embeddings"].nbytes + embeddings.nbytes)
                position = stop
            self._data[blocks] = (embeddings, labels)
        return self._data[blocks]

    def _window(self, epoch: int, index: int) -> _Window:
        key = (epoch, index)
        if key not in self._windows:
            # A batch needs at most the window before this one, so older ones can go.
            self._windows = {k: w for k, w in self._windows.items() if k == (epoch, index - 1)}
            windows, _ = self._plan(epoch)
            embeddings, labels = self._load(windows[index])
            order = None
            if self.shuffle:
                rng = np.random.default_rng([self.seed, epoch, index])
                order = rng.permutation(len(labels)).astype(_ORDER_DTYPE)
            self._windows[key] = _Window(embeddings, labels, order)
            self._note_bytes(0)
        return self._windows[key]

    def _note_bytes(self, transient: int) -> None:
        held = sum(window.nbytes for window in self._windows.values())
        self.peak_bytes = max(self.peak_bytes, held + transient)

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
        first = index * self.batch_size
        stop = min(first + self.batch_size, self.frames)
        _, starts = self._plan(self.epoch)
        pieces = []
        for w in range(
            np.searchsorted(starts, first, "right") - 1, np.searchsorted(starts, stop - 1, "right")
        ):
            window = self._window(self.epoch, w)
            lo, hi = max(first, starts[w]) - starts[w], min(stop, starts[w + 1]) - starts[w]
            rows = slice(lo, hi) if window.order is None else window.order[lo:hi]
            pieces.append((window.embeddings[rows], window.labels[rows]))
        if len(pieces) == 1:
            embeddings, labels = pieces[0]
        else:
            embeddings = np.concatenate([piece[0] for piece in pieces])
            labels = np.concatenate([piece[1] for piece in pieces])
        batch = (embeddings, self._onehot[labels])
        # Weights per frame here, vectorised, rather than Keras's class_weight loop per frame.
        return batch if self.class_weight is None else (*batch, self.class_weight[labels])
