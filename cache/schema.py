"""The cache's format: its names, columns and versions (docs/cache.md describes it in full).

A cache folder holds `shard-00000.h5`, `shard-00001.h5`, ... and `manifest.json`. Names with
`.tmp-` in them (`brogue.atomic`) are unfinished writes: readers ignore them and the next
writer removes those a killed run left. `writer.lock` and `writer.json` say which process
writes (`lock.py`); readers need neither.

Schema 3 (written now) stores any encoder's frames; schema 2 (YAMNet only) is still read.
Each shard holds F frames of C clips, in clip order:
- `embeddings` [F, D] float32 (or float16, root attribute `embedding_dtype`);
- `speech` [F] bool: the encoder's speech rule, decided at extraction;
- `clip_index` [F] int32: the frame's row in `clips/`;
- `scores` [F, K] float32, only for encoders with class scores; attribute `names` [K].
Schema 2 had `scores` [F, 521] always and `top_class` [F] int16 instead of `speech`.
Group `clips/`: one 1-D dataset of length C per column (`CLIP_COLUMNS`, then the corpus's extra
str columns). Root attributes: `schema_version`, `encoder` (`producer.EncoderRecord` as JSON;
schema 2: `yamnet_handle`, `yamnet_fingerprint`, `yamnet_params`, `yamnet_runtime`,
`yamnet_precision`), `embedding_dtype`, `brogue_version`.

A clip is its `path`. When a path is in several shards (its file was edited and extracted
again), the row in the highest-numbered shard is the clip and older rows are stale.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from brogue.errors import BrogueError

SCHEMA_VERSION = 3
READABLE_SCHEMAS = (2, 3)
MANIFEST = "manifest.json"
EMBEDDING_DTYPES = ("float32", "float16")
FRAME_COLUMNS = ("embeddings", "speech", "clip_index", "scores")
TRAINING_COLUMNS = ("embeddings", "speech", "clip_index")
CLIP_COLUMNS = (
    "path", "label", "speaker", "duration",
    "frame_start", "num_frames", "speech_frames", "content_hash", "file_size", "file_mtime_ns",
)  # fmt: skip
_SHARD_NAME = re.compile(r"shard-(\d{5})\.h5")
# Layout: contiguous and uncompressed. Compression saved at most 25 % of a corpus cache but
# read 18-190x slower on every epoch of every trial; chunking alone saved nothing and read
# blocks slower (`make bench-shards`; the table is in docs/cache.md).


class CacheError(BrogueError):
    """The cache is missing, incomplete or from another producer; the message is one line."""


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


def shard_index(path: Path) -> int:
    return int(_SHARD_NAME.fullmatch(path.name).group(1))


def complete_shards(directory: Path) -> list[Path]:
    """Finished shards, sorted by index; temporaries of a crashed run are not among them."""
    found = [
        path for path in Path(directory).glob("shard-*.h5") if _SHARD_NAME.fullmatch(path.name)
    ]
    return sorted(found, key=shard_index)


def next_shard_index(directory: Path) -> int:
    shards = complete_shards(directory)
    return shard_index(shards[-1]) + 1 if shards else 0


def read_columns(group: h5py.Group, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Columns of a `clips/` group as numpy arrays; str columns come back as numpy str arrays."""
    columns = {}
    for name in names or group.keys():
        dataset = group[name]
        is_string = h5py.check_string_dtype(dataset.dtype) is not None
        columns[name] = dataset.asstr()[()].astype(str) if is_string else dataset[()]
    return columns


def speech_column(file: h5py.File) -> str:
    """The dataset that holds a shard's speech mask: `speech`, or in schema 2 `top_class`
    (YAMNet's top class per frame, read through `speech.top_class_is_speech`)."""
    return "top_class" if file.attrs.get("schema_version") == 2 else "speech"


def live_rows(paths: Sequence[np.ndarray]) -> list[np.ndarray]:
    """For each shard's `path` column, in shard order, which rows are live (not stale)."""
    last: dict[str, tuple[int, int]] = {}
    for shard, column in enumerate(paths):
        last.update((path, (shard, row)) for row, path in enumerate(column))
    live = [np.zeros(len(column), bool) for column in paths]
    for shard, row in last.values():
        live[shard][row] = True
    return live
