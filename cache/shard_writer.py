"""Writing one shard: spooled to disk as clips come, published whole."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from brogue import atomic

from .producer import EncoderRecord
from .schema import (
    CLIP_COLUMNS,
    EMBEDDING_DTYPES,
    SCHEMA_VERSION,
    CacheError,
    ClipMeta,
    shard_index,
    shard_path,
)

_COPY_ROWS = 4096  # frames copied at a time from the spool into the shard: ~25 MB


class ShardWriter:
    """Writes one shard, with memory bounded by one piece of a clip whatever the shard's size.

    Frames go to raw spool files (temporary names) as clips come, a long clip's in pieces
    (`add_frames`, then `end_clip`), so no clip is ever held whole. `close` reserves the shard's
    size on disk, copies the frames block by block into the contiguous shard under another
    temporary name and publishes it under the first free shard name from `index` on, never
    over a finished shard. A full disk therefore fails in a plain write or in the reservation,
    with an OSError, before HDF5 writes anything: HDF5 cannot recover from a failed write
    (h5py segfaulted at exit when RLIMIT_FSIZE cut a shard short). As a context manager,
    leaving the block normally closes the shard; leaving it on an exception writes nothing.
    """

    def __init__(
        self,
        directory: Path,
        index: int,
        encoder: EncoderRecord,
        brogue_version: str,
        *,
        score_names: Sequence[str] | None = None,
        embedding_dtype: str = "float32",
        extra_columns: Sequence[str] = (),
    ) -> None:
        self.path = shard_path(directory, index)
        if self.path.exists():
            raise CacheError(f"{self.path} already exists; finished shards are never rewritten")
        if embedding_dtype not in EMBEDDING_DTYPES:
            raise ValueError(
                f"embedding_dtype must be one of {EMBEDDING_DTYPES}, got {embedding_dtype!r}"
            )
        clashes = set(extra_columns) & set(CLIP_COLUMNS)
        if clashes or len(set(extra_columns)) != len(extra_columns):
            raise ValueError(
                f"extra_columns must be distinct and not {CLIP_COLUMNS}, got {extra_columns}"
            )
        self.encoder, self.brogue_version = encoder, brogue_version
        self.score_names = None if score_names is None else list(score_names)
        self.embedding_dtype = embedding_dtype
        self.extra_columns = tuple(extra_columns)
        self._clips: list[ClipMeta] = []
        self._counts: list[int] = []  # frames of each clip
        self.frames = 0  # frames of the clips ended
        self._pending = 0  # frames spooled for the clip not yet ended
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._rows = {"embeddings": np.dtype((embedding_dtype, (encoder.embedding_size,))),
                      "speech": np.dtype(bool)}  # fmt: skip
        if self.score_names is not None:
            self._rows["scores"] = np.dtype((np.float32, (len(self.score_names),)))
        self._spool = {}
        for name in self._rows:
            path = atomic.temporary_path(self.path.with_name(f"{self.path.stem}.{name}.spool"))
            self._spool[name] = open(path, "xb+")  # closed by close or discard

    @property
    def clips(self) -> int:
        """Clips in this shard."""
        return len(self._clips)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None and not self._closed:
            self.close()
        elif not self._closed:
            self.discard()

    def add_clip(self, meta: ClipMeta | Mapping, embeddings: np.ndarray, speech: np.ndarray,
                 scores: np.ndarray | None = None) -> int:  # fmt: skip
        """One whole clip: its metadata and its frames (embeddings [N, D], speech [N], and
        scores [N, K] when the shard keeps scores); returns N."""
        meta = self._checked(meta)
        self.add_frames(embeddings, speech, scores)
        return self.end_clip(meta)

    def add_frames(self, embeddings: np.ndarray, speech: np.ndarray,
                   scores: np.ndarray | None = None) -> None:  # fmt: skip
        """Frames of the clip in progress, after those added before (`add_clip`'s arrays)."""
        if self._closed:
            raise ValueError(f"{self.path.name} is closed; open a new ShardWriter")
        arrays = {"embeddings": np.asarray(embeddings), "speech": np.asarray(speech)}
        if scores is not None:
            arrays["scores"] = np.asarray(scores)
        expected = {name: (len(arrays["embeddings"]), *row.shape)
                    for name, row in self._rows.items()}  # fmt: skip
        found = {name: array.shape for name, array in arrays.items()}
        if found != expected:
            raise ValueError(f"expected frames {expected}, got {found} for {self.path.name}")
        for name, array in arrays.items():
            self._spool[name].write(array.astype(self._rows[name].base, copy=False).tobytes())
        self._pending += len(arrays["embeddings"])

    def end_clip(self, meta: ClipMeta | Mapping) -> int:
        """The clip in progress is complete: `meta` owns every frame added since the last clip
        ended; returns their count."""
        self._clips.append(self._checked(meta))
        self._counts.append(self._pending)
        self.frames += self._pending
        self._pending = 0
        return self._counts[-1]

    def _checked(self, meta: ClipMeta | Mapping) -> ClipMeta:
        if self._closed:
            raise ValueError(f"{self.path.name} is closed; open a new ShardWriter")
        meta = meta if isinstance(meta, ClipMeta) else ClipMeta(**meta)
        unknown = set(meta.extra) - set(self.extra_columns)
        if unknown:
            raise ValueError(
                f"extra columns {sorted(unknown)} of {meta.path} are not {self.extra_columns}"
            )
        return meta

    def drop_frames(self) -> None:
        """Forget the frames of the clip in progress (one of its pieces failed)."""
        if not self._pending:
            return
        for name, file in self._spool.items():
            file.truncate(self.frames * self._rows[name].itemsize)
            file.seek(0, os.SEEK_END)
        self._pending = 0

    def _read(self, name: str, start: int, stop: int) -> np.ndarray:
        file = self._spool[name]
        file.seek(start * self._rows[name].itemsize)
        return np.fromfile(file, self._rows[name], stop - start)

    def _remove_spool(self) -> None:
        for file in self._spool.values():
            file.close()
            Path(file.name).unlink(missing_ok=True)

    def discard(self) -> None:
        """Write nothing and remove the spool."""
        self._closed = True
        self._remove_spool()

    def close(self) -> Path:
        """Write the shard under a temporary name, then publish it under a free shard name."""
        if self._closed:
            raise ValueError(f"{self.path.name} is already closed")
        self._closed = True
        temporary = atomic.temporary_path(self.path)
        try:
            for file in self._spool.values():
                file.flush()
            _reserve(temporary, self._size_estimate())
            with h5py.File(temporary, "w") as file:
                self._write(file)
            self.path = _publish_new(temporary, self.path)
        finally:
            temporary.unlink(missing_ok=True)
            self._remove_spool()
        return self.path

    def _write(self, file: h5py.File) -> None:
        """Fill `file` from the spool, block by block."""
        file.attrs.update({"schema_version": SCHEMA_VERSION, "encoder": self.encoder.to_json(),
                           "embedding_dtype": self.embedding_dtype,
                           "brogue_version": self.brogue_version})  # fmt: skip
        total = self.frames
        clip_index = np.repeat(np.arange(len(self._counts), dtype=np.int32), self._counts)
        file.create_dataset("clip_index", data=clip_index)
        outputs = {name: file.create_dataset(name, (total, *row.shape), row.base)
                   for name, row in self._rows.items()}  # fmt: skip
        if self.score_names is not None:
            outputs["scores"].attrs["names"] = np.array(self.score_names, h5py.string_dtype())
        speech_frames = np.zeros(len(self._counts), np.int64)
        for start in range(0, total, _COPY_ROWS):
            stop = min(start + _COPY_ROWS, total)
            for name, output in outputs.items():
                output[start:stop] = block = self._read(name, start, stop)
                if name == "speech":
                    speech_frames += np.bincount(clip_index[start:stop], block,
                                                 len(self._counts)).astype(np.int64)  # fmt: skip
        group = file.create_group("clips")
        for name, array in self._clip_table(speech_frames).items():
            group.create_dataset(name, data=array)

    def _clip_table(self, speech_frames: np.ndarray) -> dict[str, np.ndarray]:
        num_frames = np.array(self._counts, dtype=np.int32)
        strings = {
            "path": [str(clip.path) for clip in self._clips],
            "label": [clip.label for clip in self._clips],
            "speaker": [clip.speaker for clip in self._clips],
            "content_hash": [clip.content_hash for clip in self._clips],
        } | {
            name: [clip.extra.get(name, "") for clip in self._clips] for name in self.extra_columns
        }
        return {
            name: np.array(values, dtype=h5py.string_dtype()) for name, values in strings.items()
        } | {
            "duration": np.array([clip.duration for clip in self._clips], dtype=np.float64),
            "frame_start": np.cumsum(num_frames, dtype=np.int64) - num_frames,
            "num_frames": num_frames,
            "speech_frames": speech_frames.astype(np.int32),
            "file_size": np.array([clip.file_size for clip in self._clips], dtype=np.int64),
            "file_mtime_ns": np.array([clip.file_mtime_ns for clip in self._clips], np.int64),
        }

    def _size_estimate(self) -> int:
        """Bytes the shard will take, generously: frames, clip table and HDF5's own."""
        frame_bytes = sum(row.itemsize for row in self._rows.values()) + 4
        strings = sum(len(str(value).encode()) + 32 for clip in self._clips
                      for value in (clip.path, clip.label, clip.speaker, clip.content_hash,
                                    *clip.extra.values()))  # fmt: skip
        names = sum(len(name) + 16 for name in self.score_names or ())
        return self.frames * frame_bytes + strings + names + 64 * len(self._clips) + (256 << 10)


def _reserve(path: Path, size: int) -> None:
    """Claim `size` bytes on disk for `path`, or fail now with an OSError (no room, or over
    the file size limit); HDF5 then rewrites the file within that room."""
    descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    try:
        os.posix_fallocate(descriptor, 0, size)
    finally:
        os.close(descriptor)


def _publish_new(temporary: Path, wanted: Path) -> Path:
    """Publish a finished shard under `wanted`, or the next free shard name if it is taken."""
    index = shard_index(wanted)
    while True:
        final = shard_path(wanted.parent, index)
        try:
            atomic.publish(temporary, final, overwrite=False)
        except FileExistsError:
            index += 1
            continue
        return final
