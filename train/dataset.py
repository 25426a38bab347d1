"""The trainer's view of a cache: its classes, its encoder, and one row of arrays per clip.

A fused corpus (`train.fusion`) adds the other caches' rows of the same clips as `fused`
streams: clip-level families pool each stream on its own and join the pooled vectors.

Everything here comes from the clip tables and the manifest, so building it reads no
embeddings; the frames themselves are read later, block by block by `train.stream` for
frame-level models, clip by clip by `train.clips` for clip-level ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from brogue.cache import Cache, EncoderRecord, model_classes
from brogue.errors import BrogueError
from brogue.train.clips import ClipFeed, Stream
from brogue.train.config import TrainConfig
from brogue.train.stream import FrameFeed, make_blocks


class CorpusError(BrogueError):
    """The cache cannot be trained on; the message is one line."""


@dataclass(frozen=True)
class Corpus:
    cache: Cache
    classes: list[str]  # the accents, sorted, then "Not a speech" (`model_classes`, brogue.cache)
    label: np.ndarray  # accent index per clip
    speaker: np.ndarray  # str per clip
    key: np.ndarray  # str per clip: its content hash, how a saved split names it
    stem: np.ndarray  # str per clip: file name without extension, the OpenSLR 83 file id
    path: np.ndarray  # str per clip: its path as extracted; with `key`, what fusion matches
    shard: np.ndarray
    frame_start: np.ndarray
    num_frames: np.ndarray
    speech_frames: np.ndarray
    fused: tuple[Stream, ...] = ()  # the same clips in the other caches of a fused corpus

    @property
    def streams(self) -> list[Stream]:
        """This cache's frames of each clip, then each fused cache's."""
        own = Stream(self.cache, self.shard, self.frame_start, self.num_frames)
        return [own, *self.fused]

    @property
    def encoders(self) -> list[EncoderRecord]:
        return [stream.cache.encoder for stream in self.streams]

    @property
    def widths(self) -> list[int]:
        """Each stream's embedding size."""
        return [stream.cache.embedding_size for stream in self.streams]

    def select(self, rows: np.ndarray) -> Corpus:
        """The corpus of the clips in `rows` (positions), in that order."""
        arrays = ("label", "speaker", "key", "stem", "path", "shard", "frame_start",
                  "num_frames", "speech_frames")  # fmt: skip
        return replace(self, **{name: getattr(self, name)[rows] for name in arrays},
                       fused=tuple(stream.select(rows) for stream in self.fused))  # fmt: skip

    @property
    def accents(self) -> list[str]:
        return self.classes[:-1]

    @property
    def encoder(self) -> EncoderRecord:
        return self.cache.encoder

    @property
    def embedding_size(self) -> int:
        return self.cache.embedding_size

    def budgets(self, train: np.ndarray, valid: np.ndarray, budget_bytes: int) -> tuple[int, int]:
        """The RAM budget split between the train and valid feeds, which live through the whole
        fit together, in proportion to their frames."""
        frames = self.num_frames
        valid_budget = int(budget_bytes * frames[valid].sum() / frames[train | valid].sum())
        return budget_bytes - valid_budget, valid_budget

    def feed(
        self,
        chosen: np.ndarray,
        config: TrainConfig,
        budget_bytes: int,
        shuffle: bool,
        class_weight: np.ndarray | None = None,
    ) -> FrameFeed:
        """A Keras feed of the `chosen` clips' frames, reshuffled every epoch or in block order."""
        blocks = make_blocks(
            self.shard, self.frame_start, self.num_frames, chosen, config.block_frames
        )
        # Its own Cache: the TF backend reads a feed from a background thread, and a Cache
        # serves one thread.
        return FrameFeed(
            Cache(self.cache.directory), blocks, self.label, len(self.classes),
            config.batch_size, budget_bytes, shuffle, config.seed, class_weight,
        )  # fmt: skip

    def clip_feed(
        self,
        chosen: np.ndarray,
        config: TrainConfig,
        budget_bytes: int,
        shuffle: bool,
        class_weight: np.ndarray | None = None,
    ) -> ClipFeed:
        """A Keras feed of the `chosen` clips whole, padded per batch; in table order unshuffled."""
        # Each stream its own Cache, for the same reason as `feed`.
        streams = [replace(stream, cache=Cache(stream.cache.directory)) for stream in self.streams]
        return ClipFeed(
            streams, np.flatnonzero(chosen), self.label, len(self.accents), config.batch_size,
            budget_bytes, shuffle, config.seed, class_weight,
        )  # fmt: skip

    def speaker_labels(self) -> dict[str, str]:
        """Speaker → accent, from the manifest, which records one accent per speaker."""
        return {
            speaker: entry["label"] for speaker, entry in self.cache.manifest["speakers"].items()
        }


def load_corpus(directory: Path) -> Corpus:
    """The cache in `directory` as the trainer sees it; refuses a cache without accents."""
    cache = Cache(directory)
    clips = cache.clips()
    accents = sorted(cache.manifest["labels"])
    if len(accents) < 2 or "" in accents:
        raise CorpusError(
            f"{directory}: training needs clips labelled with two or more accents, "
            f"the cache has {accents}"
        )
    index = {name: i for i, name in enumerate(accents)}
    return Corpus(
        cache=cache,
        classes=model_classes(accents),
        label=np.array([index[name] for name in clips["label"]], dtype=np.int64),
        speaker=np.asarray(clips["speaker"], dtype=str),
        key=np.asarray(clips["content_hash"], dtype=str),
        stem=np.array([Path(path).stem for path in clips["path"]], dtype=str),
        path=np.asarray(clips["path"], dtype=str),
        shard=np.asarray(clips["shard"], dtype=np.int64),
        frame_start=np.asarray(clips["frame_start"], dtype=np.int64),
        num_frames=np.asarray(clips["num_frames"], dtype=np.int64),
        speech_frames=np.asarray(clips["speech_frames"], dtype=np.int64),
    )
