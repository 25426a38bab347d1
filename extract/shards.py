"""The shard cache: the one seam between `extract/` (writes it) and `train/` (reads it).

Format, schema version 2
------------------------
A cache folder holds `shard-00000.h5`, `shard-00001.h5`, ... and `manifest.json`.
Names with `.tmp-` in them (`brogue.atomic`) are unfinished writes: readers ignore
them, and the next writer removes those a killed run left. A shard is published
only under a free name, so a finished shard is never rewritten. `writer.lock` and
`writer.json` say which process is writing (`lock.py`); readers need neither.

Each shard is one HDF5 file with F frames (0.96 s YAMNet patches, hop 0.48 s) of
C clips, stored in clip order:

- `embeddings` [F, 1024] float32, or float16 when extracted so (see the root
  attribute `embedding_dtype`); `Cache` always returns float32.
- `scores` [F, 521] float32: YAMNet's class scores.
- `top_class` [F] int16: argmax of `scores`; class 0 is Speech, so the trainer
  can tell speech frames without reading `scores`.
- `clip_index` [F] int32: the frame's row in the `clips/` tables.
- group `clips/`, one 1-D dataset of length C per column: `path` (utf-8 str,
  relative to the corpus root with / separators, so a moved corpus is still the
  same corpus), `label`, `speaker` (utf-8 str); `duration` (float64 seconds);
  `frame_start` (int64, the clip's first row in the frame arrays); `num_frames`
  (int32, may be 0); `speech_frames` (int32, frames whose `top_class` is 0);
  `content_hash` (str, sha256 hex digest of the audio file's bytes, see
  `hash_file`); `file_size` and `file_mtime_ns` (int64, the file's size and
  modification time when it was hashed; 0 when unknown). Any other dataset in
  `clips/` is an extra str column the corpus supplies (gender, prompt_id,
  transcript, ...): fixed per shard, "" where a clip has no value.

A clip is its `path`. When a path appears in several shards (its file was edited
and extracted again), the row in the highest-numbered shard is the clip and the
older rows are stale: `Cache.clips()` and the manifest's counts leave them out.
- Root attributes: `schema_version` (int), `yamnet_handle`, `yamnet_fingerprint`,
  `yamnet_params` (JSON text), `yamnet_runtime` (hub, keras or openvino),
  `yamnet_precision` (fp32 or bf16; absent means fp32), `embedding_dtype`, `brogue_version`.

All datasets are contiguous and uncompressed, which reads fastest; the
measurements are in the comment under "Layout" below.

`manifest.json` is a JSON object with `schema_version`, the counting sections
that `summarise` builds from the `clips/` tables (`shards`, `labels`, `speakers`,
`totals`), and what the extraction run adds: `failures` [{path, reason}],
`yamnet` {handle, fingerprint, params (JSON object), runtime, precision},
`brogue_version`, `parameters`, `created`, `updated`. Its `shards` entries count
each shard's rows, stale ones included; `labels`, `speakers` and `totals` count
clips. `Cache` reads only shards the manifest lists.

Trust: every shard carries its producer (schema version, YAMNet fingerprint,
params and precision; the runtime is recorded too, but fp32 runtimes agree to 1e-5).
`cached_clips` (resuming) and `Cache` (training) refuse shards from a different
producer instead of mixing them in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from brogue import atomic
from brogue.errors import BrogueError

from .yamnet.params import PARAMS, SPEECH_CLASS

SCHEMA_VERSION = 2
MANIFEST = "manifest.json"
EMBEDDING_DTYPES = ("float32", "float16")
FRAME_COLUMNS = ("embeddings", "scores", "top_class", "clip_index")
TRAINING_COLUMNS = ("embeddings", "top_class", "clip_index")
CLIP_COLUMNS = (
    "path", "label", "speaker", "duration",
    "frame_start", "num_frames", "speech_frames", "content_hash", "file_size", "file_mtime_ns",
)  # fmt: skip
# Layout: contiguous and uncompressed. `brogue bench shards` (20,000 frames, a 124 MB
# float32 shard; speeds in thousand frames/s reading embeddings + top_class + clip_index, "cold"
# after dropping the file from the page cache, "warm" best of three; 2-core dev VM):
#   layout                       MB  write s  whole cold/warm  256-row blocks cold/warm
#   contiguous / none           124     0.15      582 / 1147        850 / 1712
#   chunk   64 / none           124     0.19      480 /  942        483 /  697
#   chunk   64 / lzf            102     1.33       52 /   57         46 /   52
#   chunk   64 / gzip-1+shuffle  93     2.81       33 /   43         34 /   36
#   chunk  256 / none           125     0.17      138 /  999        541 /  830
#   chunk  256 / lzf            102     1.29       40 /   64         31 /   31
#   chunk  256 / gzip-1+shuffle  93     3.05       35 /   45         22 /   22
#   chunk 1024 / none           127     0.17      274 / 1335        597 / 1295
#   chunk 1024 / lzf            102     1.26       59 /   64          8 /   13
#   chunk 1024 / gzip-1+shuffle  93     2.80       39 /   44          9 /    9
# Compression saves at most 25 % of the ~1.5 GB corpus cache but reads 18-190x slower, on every
# epoch of every trial; chunking alone saves nothing and reads blocks slower.
_SUMMARY_COLUMNS = ("path", "label", "speaker", "duration", "num_frames", "speech_frames")
_COPY_ROWS = 4096  # frames copied at a time from the spool into the shard: ~25 MB
_SHARD_NAME = re.compile(r"shard-(\d{5})\.h5")


class CacheError(BrogueError):
    """The cache is missing, incomplete or from another producer; the message is one line."""


@dataclasses.dataclass(frozen=True)
class ShardAttrs:
    """Who produced a shard; stored as root attributes of every shard."""

    yamnet_handle: str
    yamnet_fingerprint: str
    yamnet_params: str  # JSON text, as Params.to_json() gives
    brogue_version: str
    yamnet_runtime: str = "unknown"  # where the network ran: hub, keras, openvino
    yamnet_precision: str = "fp32"  # fp32 or bf16: one cache never mixes the two


@dataclasses.dataclass(frozen=True)
class ClipMeta:
    """One clip's row in `clips/`; `extra` holds the corpus's extra str columns."""

    path: str | Path
    label: str
    speaker: str
    duration: float
    content_hash: str
    extra: Mapping[str, str] = dataclasses.field(default_factory=dict)
    file_size: int = 0  # 0: unknown, so a resumed run hashes the file again
    file_mtime_ns: int = 0


@dataclasses.dataclass(frozen=True)
class ShardSummary:
    """What `ShardWriter.close` wrote."""

    path: Path
    clips: int
    frames: int
    speech_frames: int


@dataclasses.dataclass(frozen=True)
class ClipTable:
    """Clip columns of equal length, indexable by column name.

    `select` takes a boolean mask or integer rows and returns a smaller table, so
    splits read as `table.select(np.isin(table["speaker"], validation_speakers))`.
    """

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["path"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def select(self, rows: np.ndarray) -> ClipTable:
        return ClipTable({name: column[rows] for name, column in self.columns.items()})


def shard_path(directory: Path, index: int) -> Path:
    return Path(directory) / f"shard-{index:05d}.h5"


def hash_file(path: Path) -> str:
    """The `content_hash` of a file: sha256 of its bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ShardWriter:
    """Writes one shard; a clip's frames may arrive in pieces, so memory stays bounded.

    Frames go to two raw spool files (temporary names) as they come. `close` reserves the
    shard's size on disk, copies the frames block by block into the contiguous shard under
    another temporary name and publishes it under the first free shard name from `index` on,
    never over a finished shard. A full disk therefore fails in a plain write or in the
    reservation, with an OSError, before HDF5 writes anything: HDF5 cannot recover from a
    failed write (h5py segfaulted at exit when RLIMIT_FSIZE cut a shard short). As a context
    manager, leaving the block normally closes the shard (unless `close` was called inside
    it); leaving it on an exception writes nothing.
    """

    def __init__(
        self,
        directory: Path,
        index: int,
        attrs: ShardAttrs | Mapping[str, str],
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
        self.attrs = attrs if isinstance(attrs, ShardAttrs) else ShardAttrs(**attrs)
        self.embedding_dtype = embedding_dtype
        self.extra_columns = tuple(extra_columns)
        self._clips: list[ClipMeta] = []
        self._counts: list[int] = []  # frames of each finished clip
        self._open: ClipMeta | None = None
        self.frames = 0  # frames spooled, the open clip's included
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._rows = {"scores": np.dtype((np.float32, (PARAMS.num_classes,))),
                      "embeddings": np.dtype((embedding_dtype, (PARAMS.embedding_size,)))}
        self._spool = {}
        for name in self._rows:
            path = atomic.temporary_path(self.path.with_name(f"{self.path.stem}.{name}.spool"))
            self._spool[name] = open(path, "xb+")  # closed by close or discard

    @property
    def clips(self) -> int:
        """Finished clips in this shard."""
        return len(self._clips)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None and not self._closed:
            self.close()
        elif not self._closed:
            self.discard()

    def add_clip(
        self, meta: ClipMeta | Mapping, scores: np.ndarray, embeddings: np.ndarray
    ) -> None:
        """One whole clip: its metadata, scores [N, 521] and embeddings [N, 1024]."""
        self.begin_clip(meta)
        try:
            self.add_frames(scores, embeddings)
        except ValueError:
            self.abort_clip()
            raise
        self.end_clip()

    def begin_clip(self, meta: ClipMeta | Mapping) -> None:
        """Start a clip whose frames follow in one or more `add_frames` calls."""
        if self._closed:
            raise ValueError(f"{self.path.name} is closed; open a new ShardWriter")
        if self._open is not None:
            raise ValueError(f"{self._open.path} is still open in {self.path.name}")
        meta = meta if isinstance(meta, ClipMeta) else ClipMeta(**meta)
        unknown = set(meta.extra) - set(self.extra_columns)
        if unknown:
            raise ValueError(
                f"extra columns {sorted(unknown)} of {meta.path} are not {self.extra_columns}"
            )
        self._open = meta

    def add_frames(self, scores: np.ndarray, embeddings: np.ndarray) -> None:
        """Append the open clip's next frames: scores [N, 521] and embeddings [N, 1024]."""
        if self._open is None:
            raise ValueError(f"no clip is open in {self.path.name}; call begin_clip first")
        scores, embeddings = np.asarray(scores), np.asarray(embeddings)
        size, classes = PARAMS.embedding_size, PARAMS.num_classes
        if (
            scores.ndim != 2 or scores.shape[1] != classes
            or embeddings.shape != (len(scores), size)
        ):  # fmt: skip
            raise ValueError(
                f"expected scores [N, {classes}] and embeddings [N, {size}] with the same N, "
                f"got {scores.shape} and {embeddings.shape} for {self._open.path}"
            )
        self._spool["scores"].write(scores.astype(np.float32, copy=False).tobytes())
        self._spool["embeddings"].write(embeddings.astype(self.embedding_dtype).tobytes())
        self.frames += len(scores)

    def end_clip(self) -> int:
        """The open clip is complete; returns its number of frames."""
        if self._open is None:
            raise ValueError(f"no clip is open in {self.path.name}")
        self._counts.append(self.frames - sum(self._counts))
        self._clips.append(self._open)
        self._open = None
        return self._counts[-1]

    def abort_clip(self) -> None:
        """Forget the open clip and its frames (its file failed part way through)."""
        self._resize(sum(self._counts))
        self._open = None

    def _resize(self, frames: int) -> None:
        for name, file in self._spool.items():
            file.truncate(frames * self._rows[name].itemsize)
            file.seek(0, os.SEEK_END)
        self.frames = frames

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

    def close(self) -> ShardSummary:
        """Write the shard under a temporary name, then publish it under a free shard name."""
        if self._closed:
            raise ValueError(f"{self.path.name} is already closed")
        if self._open is not None:
            raise ValueError(f"{self._open.path} is still open in {self.path.name}")
        self._closed = True
        temporary = atomic.temporary_path(self.path)
        try:
            for file in self._spool.values():
                file.flush()
            _reserve(temporary, self._size_estimate())
            with h5py.File(temporary, "w") as file:
                speech_frames = self._write(file)
            self.path = _publish_new(temporary, self.path)
        finally:
            temporary.unlink(missing_ok=True)
            self._remove_spool()
        return ShardSummary(self.path, len(self._clips), self.frames, int(speech_frames.sum()))

    def _write(self, file: h5py.File) -> np.ndarray:
        """Fill `file` from the spool, block by block; returns speech frames per clip."""
        file.attrs.update(
            dataclasses.asdict(self.attrs)
            | {"schema_version": SCHEMA_VERSION, "embedding_dtype": self.embedding_dtype}
        )
        total = self.frames
        clip_index = np.repeat(np.arange(len(self._counts), dtype=np.int32), self._counts)
        file.create_dataset("clip_index", data=clip_index)
        top_class = file.create_dataset("top_class", (total,), np.int16)
        outputs = {name: file.create_dataset(name, (total, *row.shape), row.base)
                   for name, row in self._rows.items()}  # fmt: skip
        speech_frames = np.zeros(len(self._counts), np.int64)
        for start in range(0, total, _COPY_ROWS):
            stop = min(start + _COPY_ROWS, total)
            blocks = {name: self._read(name, start, stop) for name in outputs}
            for name, output in outputs.items():
                output[start:stop] = blocks[name]
            top = blocks["scores"].argmax(axis=1)
            top_class[start:stop] = top
            speech = np.bincount(clip_index[start:stop], top == SPEECH_CLASS, len(self._counts))
            speech_frames += speech.astype(np.int64)
        group = file.create_group("clips")
        for name, array in self._clip_table(speech_frames).items():
            group.create_dataset(name, data=array)
        return speech_frames

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
        frame_bytes = sum(row.itemsize for row in self._rows.values()) + 2 + 4
        strings = sum(len(str(value).encode()) + 32 for clip in self._clips
                      for value in (clip.path, clip.label, clip.speaker, clip.content_hash,
                                    *clip.extra.values()))  # fmt: skip
        return self.frames * frame_bytes + strings + 64 * len(self._clips) + (256 << 10)


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
    index = _shard_index(wanted)
    while True:
        final = shard_path(wanted.parent, index)
        try:
            atomic.publish(temporary, final, overwrite=False)
        except FileExistsError:
            index += 1
            continue
        return final


def complete_shards(directory: Path) -> list[Path]:
    """Finished shards, sorted by index; temporaries of a crashed run are not among them."""
    found = [
        path for path in Path(directory).glob("shard-*.h5") if _SHARD_NAME.fullmatch(path.name)
    ]
    return sorted(found, key=_shard_index)


def _shard_index(path: Path) -> int:
    return int(_SHARD_NAME.fullmatch(path.name).group(1))


def next_shard_index(directory: Path) -> int:
    shards = complete_shards(directory)
    return _shard_index(shards[-1]) + 1 if shards else 0


class CachedFile(NamedTuple):
    """What the cache knows of a clip's file: enough to tell, without hashing, it is unchanged."""

    content_hash: str
    file_size: int
    file_mtime_ns: int


def cached_clips(directory: Path, attrs: ShardAttrs | Mapping[str, str]) -> dict[str, CachedFile]:
    """Path -> its file as cached, for every clip in finished shards: what resuming skips.

    A file edited in place has a new hash and is extracted again (the new row makes the old
    one stale); two paths holding identical bytes are two clips, each stored once.
    Refuses the cache if any shard was produced by another schema, YAMNet or params,
    so a resumed run never mixes two producers.
    """
    attrs = attrs if isinstance(attrs, ShardAttrs) else ShardAttrs(**attrs)
    cached: dict[str, CachedFile] = {}
    for path in complete_shards(directory):  # later shards overwrite stale rows
        with h5py.File(path, "r") as file:
            _check_producer(path, file, attrs.yamnet_fingerprint, json.loads(attrs.yamnet_params),
                            attrs.yamnet_precision)
            table = read_columns(file["clips"], ("path", "content_hash", "file_size",
                                                  "file_mtime_ns"))
        rows = zip(*table.values(), strict=True)
        cached.update((clip, CachedFile(digest, int(size), int(mtime)))
                      for clip, digest, size, mtime in rows)  # fmt: skip
    return cached


def live_rows(paths: Sequence[np.ndarray]) -> list[np.ndarray]:
    """For each shard's `path` column, in shard order, which rows are live (not stale)."""
    last: dict[str, tuple[int, int]] = {}
    for shard, column in enumerate(paths):
        last.update((path, (shard, row)) for row, path in enumerate(column))
    live = [np.zeros(len(column), bool) for column in paths]
    for shard, row in last.values():
        live[shard][row] = True
    return live


def _check_producer(path: Path, file: h5py.File, fingerprint: str, params: dict,
                    precision: str) -> None:
    found = file.attrs
    differences = [
        f"{name} {theirs} instead of {ours}"
        for name, theirs, ours in (
            ("schema version", found["schema_version"], SCHEMA_VERSION),
            ("YAMNet fingerprint", found["yamnet_fingerprint"], fingerprint),
            # Shards from before precisions were recorded are all fp32.
            ("YAMNet precision", found.get("yamnet_precision", "fp32"), precision),
        )
        if theirs != ours
    ]
    if json.loads(found["yamnet_params"]) != params:
        differences.append("other YAMNet params")
    if differences:
        raise CacheError(
            f"{path} was written with {', '.join(differences)}; delete the cache and extract again"
        )


def read_columns(group: h5py.Group, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Columns of a `clips/` group as numpy arrays; str columns come back as numpy str arrays."""
    columns = {}
    for name in names or group.keys():
        dataset = group[name]
        is_string = h5py.check_string_dtype(dataset.dtype) is not None
        columns[name] = dataset.asstr()[()].astype(str) if is_string else dataset[()]
    return columns


def summarise(directory: Path, paths: Sequence[Path] | None = None) -> dict:
    """The manifest's counting sections, from the `clips/` tables of the finished shards
    (or of `paths`, the shards among them that `brogue verify` found sound)."""
    shards, labels, speakers, tables = [], {}, {}, []
    totals = {"clips": 0, "frames": 0, "speech_frames": 0, "seconds": 0.0}
    for path in complete_shards(directory) if paths is None else paths:
        with h5py.File(path, "r") as file:
            table = read_columns(file["clips"], _SUMMARY_COLUMNS)
        frames = table["num_frames"]
        shards.append({"file": path.name, "clips": len(frames), "frames": int(frames.sum())})
        tables.append(table)
    live = live_rows([table["path"] for table in tables])
    for table, rows_live in zip(tables, live, strict=True):
        rows = zip(*(table[name][rows_live] for name in _SUMMARY_COLUMNS[1:]), strict=True)
        for label, speaker, seconds, num_frames, speech_frames in rows:
            known = speakers.setdefault(speaker, {"label": label})
            if known["label"] != label:
                raise CacheError(f"speaker {speaker} has clips labelled {known['label']}, {label}")
            for counts in (labels.setdefault(label, {}), known, totals):
                _count(counts, int(num_frames), int(speech_frames))
            totals["seconds"] += float(seconds)
    return {
        "shards": shards,
        "labels": dict(sorted(labels.items())),
        "speakers": dict(sorted(speakers.items())),
        "totals": totals,
    }


def _count(counts: dict, frames: int, speech_frames: int) -> None:
    for key, value in (("clips", 1), ("frames", frames), ("speech_frames", speech_frames)):
        counts[key] = counts.get(key, 0) + value


def write_manifest(directory: Path, manifest: Mapping) -> None:
    """Write `manifest.json` atomically, stamped with this schema version."""
    text = json.dumps({**manifest, "schema_version": SCHEMA_VERSION}, indent=2, ensure_ascii=False)
    atomic.write_text(Path(directory) / MANIFEST, text + "\n")


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise CacheError(f"no {MANIFEST} in {directory}; run `brogue extract` first")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise CacheError(
            f"{path} has schema version {manifest.get('schema_version')}, this brogue reads "
            f"{SCHEMA_VERSION}; extract the cache again"
        )
    return manifest


class Cache:
    """Read access to a finished cache: the only interface the trainer uses.

    Shard files are opened on first use and kept open until `close` (or the end of
    a `with` block). A Cache is for one thread at a time and one process: create
    it after forking, and give each worker thread its own.
    `shard` arguments are positions in `shard_paths`, as in `clips()["shard"]`;
    `manifest["shards"][shard]["frames"]` is that shard's frame count.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        if "yamnet" not in self.manifest:
            raise CacheError(f"{self.directory / MANIFEST} has no yamnet section; extract again")
        self.handle: str = self.manifest["yamnet"]["handle"]
        self.fingerprint: str = self.manifest["yamnet"]["fingerprint"]
        self._params: dict = self.manifest["yamnet"]["params"]
        self.precision: str = self.manifest["yamnet"].get("precision", "fp32")
        self.shard_paths = [self.directory / shard["file"] for shard in self.manifest["shards"]]
        missing = [path.name for path in self.shard_paths if not path.is_file()]
        if missing:
            raise CacheError(f"{self.directory} lacks shards its manifest lists: {missing}")
        self._files: dict[int, h5py.File] = {}
        # h5py looks a dataset up by name in ~0.1 ms, longer than reading a 256-row block
        self._frame_datasets: dict[int, dict[str, h5py.Dataset]] = {}

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

    def iter_shards(
        self, columns: Sequence[str] = TRAINING_COLUMNS
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """All frames, one shard at a time, so memory stays bounded by one shard."""
        for shard in range(len(self.shard_paths)):
            yield shard, self.read_frames(shard, 0, self._num_frames(shard), columns)

    def read_frames(
        self, shard: int, start: int, stop: int, columns: Sequence[str] = TRAINING_COLUMNS
    ) -> dict[str, np.ndarray]:
        """Rows start:stop of one shard's frame arrays; embeddings come back as float32."""
        unknown = set(columns) - set(FRAME_COLUMNS)
        if unknown:
            raise ValueError(f"frame columns are {FRAME_COLUMNS}, got {sorted(unknown)}")
        frames = self._num_frames(shard)
        if not 0 <= start <= stop <= frames:
            raise ValueError(f"rows {start}:{stop} are outside shard {shard} (0:{frames})")
        datasets = self._datasets(shard)
        block = {name: datasets[name][start:stop] for name in columns}
        if "embeddings" in block:
            block["embeddings"] = block["embeddings"].astype(np.float32, copy=False)
        return block

    def clip_frames(self, shard: int, row: int) -> dict[str, np.ndarray]:
        """Embeddings, scores and top_class of the clip in row `row` of shard `shard`'s table."""
        clips = self._file(shard)["clips"]
        start = int(clips["frame_start"][row])
        stop = start + int(clips["num_frames"][row])
        return self.read_frames(shard, start, stop, ("embeddings", "scores", "top_class"))

    def _num_frames(self, shard: int) -> int:
        return len(self._datasets(shard)["top_class"])

    def _datasets(self, shard: int) -> dict[str, h5py.Dataset]:
        if shard not in self._frame_datasets:
            file = self._file(shard)
            self._frame_datasets[shard] = {name: file[name] for name in FRAME_COLUMNS}
        return self._frame_datasets[shard]

    def _file(self, shard: int) -> h5py.File:
        if shard not in self._files:
            if not 0 <= shard < len(self.shard_paths):
                raise ValueError(f"shard must be in 0:{len(self.shard_paths)}, got {shard}")
            file = h5py.File(self.shard_paths[shard], "r")
            try:
                _check_producer(self.shard_paths[shard], file, self.fingerprint, self._params,
                                self.precision)
            except CacheError:
                file.close()
                raise
            self._files[shard] = file
        return self._files[shard]


def _column(table: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A column of one shard's table; an extra column the shard lacks reads as ""."""
    return table[name] if name in table else np.full(len(table["path"]), "")
