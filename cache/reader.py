"""Reading a cache: the only way the trainer sees embeddings, and what resuming skips."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from .manifest import manifest_producer, read_manifest
from .producer import EncoderRecord
from .schema import (
    CLIP_COLUMNS,
    FRAME_COLUMNS,
    MANIFEST,
    READABLE_SCHEMAS,
    TRAINING_COLUMNS,
    CacheError,
    ClipTable,
    complete_shards,
    live_rows,
    read_columns,
    speech_column,
)
from .speech import top_class_is_speech


def shard_producer(path: Path, file: h5py.File) -> EncoderRecord:
    """The producer a shard records, in either readable schema."""
    attrs = file.attrs
    version = attrs.get("schema_version")
    if version not in READABLE_SCHEMAS:
        raise CacheError(f"{path} has schema version {version}; this brogue reads "
                         f"{READABLE_SCHEMAS}: delete the cache and extract again")  # fmt: skip
    if version == 2:
        return EncoderRecord.from_schema2({key[len("yamnet_"):]: value for key, value in
                                           attrs.items() if key.startswith("yamnet_")})
    return EncoderRecord.from_json(attrs["encoder"])


def check_producer(path: Path, file: h5py.File, expected: EncoderRecord) -> None:
    """Refuse a shard whose frames another producer made."""
    differences = expected.differences(shard_producer(path, file))
    if differences:
        raise CacheError(f"{path} was written with {', '.join(differences)}; refusing to mix "
                         "producers: delete the cache and extract again")  # fmt: skip


def stored_clips(path: Path) -> list[tuple[str, str]]:
    """(path, content hash) of every row of the finished shard at `path`, stale ones included."""
    with h5py.File(path, "r") as file:
        table = read_columns(file["clips"], ("path", "content_hash"))
    return list(zip(table["path"], table["content_hash"], strict=True))


class CachedFile(NamedTuple):
    """What the cache knows of a clip's file: enough to tell, without hashing, it is unchanged."""

    content_hash: str
    file_size: int
    file_mtime_ns: int


def cached_files(directory: Path, producer: EncoderRecord) -> dict[str, CachedFile]:
    """Path -> its file as cached, for every clip in finished shards: what resuming skips.

    A file edited in place has a new hash and is extracted again (the new row makes the old
    one stale); two paths holding identical bytes are two clips, each stored once. Refuses the
    cache if any shard was made by another producer, so a resumed run never mixes two.
    """
    cached: dict[str, CachedFile] = {}
    for path in complete_shards(directory):  # later shards overwrite stale rows
        with h5py.File(path, "r") as file:
            check_producer(path, file, producer)
            table = read_columns(file["clips"], ("path", "content_hash", "file_size",
                                                  "file_mtime_ns"))  # fmt: skip
        rows = zip(*table.values(), strict=True)
        cached.update((clip, CachedFile(digest, int(size), int(mtime)))
                      for clip, digest, size, mtime in rows)  # fmt: skip
    return cached


class Cache:
    """Read access to a finished cache: the only interface the trainer uses.

    Shard files are opened on first use and kept open until `close` (or the end of a `with`
    block). A Cache is for one thread at a time and one process: create it after forking,
    and give each worker thread its own. `shard` arguments are positions in `shard_paths`, as
    in `clips()["shard"]`.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        self.encoder = manifest_producer(self.directory, self.manifest)
        self.shard_paths = [self.directory / shard["file"] for shard in self.manifest["shards"]]
        missing = [path.name for path in self.shard_paths if not path.is_file()]
        if missing:
            raise CacheError(f"{self.directory} lacks shards its {MANIFEST} lists: {missing}")
        self._files: dict[int, h5py.File] = {}
        # h5py looks a dataset up by name in ~0.1 ms, longer than reading a 256-row block
        self._frame_datasets: dict[int, dict[str, h5py.Dataset]] = {}

    @property
    def embedding_size(self) -> int:
        return self.encoder.embedding_size

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()
        self._frame_datasets.clear()

    def clips(self) -> ClipTable:
        """Every clip's row (stale rows left out), plus int columns `shard` and `row`."""
        tables = [
            read_columns(self._file(shard)["clips"]) for shard in range(len(self.shard_paths))
        ]
        extras = {name for table in tables for name in table} - set(CLIP_COLUMNS)
        names = list(CLIP_COLUMNS) + sorted(extras)
        columns = {
            name: np.concatenate([_column(table, name) for table in tables]) for name in names
        }
        sizes = [len(table["path"]) for table in tables]
        columns["shard"] = np.repeat(np.arange(len(tables), dtype=np.int64), sizes)
        columns["row"] = np.concatenate([np.arange(size, dtype=np.int64) for size in sizes])
        live = live_rows([table["path"] for table in tables])
        return ClipTable(columns).select(np.concatenate(live))

    def read_frames(
        self, shard: int, start: int, stop: int, columns: Sequence[str] = TRAINING_COLUMNS
    ) -> dict[str, np.ndarray]:
        """Rows start:stop of one shard's frame arrays; embeddings come back as float32."""
        unknown = set(columns) - set(FRAME_COLUMNS)
        if unknown:
            raise ValueError(f"frame columns are {FRAME_COLUMNS}, got {sorted(unknown)}")
        frames = self.num_frames(shard)
        if not 0 <= start <= stop <= frames:
            raise ValueError(f"rows {start}:{stop} are outside shard {shard} (0:{frames})")
        datasets = self._datasets(shard)
        if "scores" in columns and "scores" not in datasets:
            raise CacheError(f"{self.shard_paths[shard]}: {self.encoder.name} stores no scores")
        block = {name: datasets[name][start:stop] for name in columns if name != "speech"}
        if "speech" in columns:
            speech = datasets["speech"][start:stop]
            block["speech"] = speech if "top_class" not in datasets else top_class_is_speech(
                speech)
        if "embeddings" in block:
            block["embeddings"] = block["embeddings"].astype(np.float32, copy=False)
        return block

    def clip_frames(self, shard: int, row: int,
                    columns: Sequence[str] = ("embeddings", "speech")) -> dict[str, np.ndarray]:
        """The frames of the clip in row `row` of shard `shard`'s table."""
        clips = self._file(shard)["clips"]
        start = int(clips["frame_start"][row])
        stop = start + int(clips["num_frames"][row])
        return self.read_frames(shard, start, stop, columns)

    def score_names(self) -> list[str] | None:
        """The names of the stored scores' columns, or None when the encoder has no scores."""
        if not self.shard_paths:
            return None
        scores = self._datasets(0).get("scores")
        if scores is None:
            return None
        names = scores.attrs.get("names")
        return None if names is None else [str(name) for name in names]

    def num_frames(self, shard: int) -> int:
        return len(self._datasets(shard)["clip_index"])

    def _datasets(self, shard: int) -> dict[str, h5py.Dataset]:
        if shard not in self._frame_datasets:
            file = self._file(shard)
            speech = speech_column(file)
            found = {name: file[name] for name in ("embeddings", "clip_index", "scores")
                     if name in file}  # fmt: skip
            self._frame_datasets[shard] = found | {"speech": file[speech]} | (
                {"top_class": file[speech]} if speech == "top_class" else {})
        return self._frame_datasets[shard]

    def _file(self, shard: int) -> h5py.File:
        if shard not in self._files:
            if not 0 <= shard < len(self.shard_paths):
                raise ValueError(f"shard must be in 0:{len(self.shard_paths)}, got {shard}")
            file = h5py.File(self.shard_paths[shard], "r")
            try:
                check_producer(self.shard_paths[shard], file, self.encoder)
            except CacheError:
                file.close()
                raise
            self._files[shard] = file
        return self._files[shard]


def _column(table: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A column of one shard's table; an extra column the shard lacks reads as ""."""
    return table[name] if name in table else np.full(len(table["path"]), "")
