"""The one writer of a cache folder: its lock, its leftovers, its shards and its manifest.

`CacheWriter` is held for a whole extraction run. Entering it checks the folder is writable,
takes the writer lock (`lock.py`), removes what a killed writer left, and refuses a cache of
another producer; it then knows what the cache already holds (`cached`). Shards are written
through `ShardSpec.new_shard`, which processes other than the lock holder (Ray actors) may
call too: each publishes under a free name. `write_manifest` is the only writer of
`manifest.json` during a run.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path

from brogue import __version__, atomic

from .lock import writer_lock
from .manifest import manifest_producer, read_manifest, summarise, write_manifest
from .producer import EncoderRecord
from .reader import CachedFile, cached_files
from .schema import MANIFEST, CacheError, next_shard_index
from .shard_writer import ShardWriter


@dataclasses.dataclass(frozen=True)
class ShardSpec:
    """What every shard of one run shares; picklable, so other processes write shards too."""

    directory: Path
    encoder: EncoderRecord
    score_names: tuple[str, ...] | None
    embedding_dtype: str = "float32"
    extra_columns: tuple[str, ...] = ()

    def new_shard(self) -> ShardWriter:
        """A writer for the next free shard name."""
        while True:  # another process may take the next index meanwhile: then the one after
            try:
                return ShardWriter(self.directory, next_shard_index(self.directory),
                                   self.encoder, __version__, score_names=self.score_names,
                                   embedding_dtype=self.embedding_dtype,
                                   extra_columns=self.extra_columns)  # fmt: skip
            except CacheError:
                continue


def orphans(directory: Path) -> list[Path]:
    """The temporary files in `directory`: a killed writer's, unless a writer holds the lock."""
    return sorted(path for path in Path(directory).iterdir() if atomic.is_temporary(path))


def remove_orphans(directory: Path) -> list[Path]:
    """Delete the temporary files a killed writer left; only the lock holder may call this."""
    found = orphans(directory)
    for path in found:
        path.unlink()
    return found


class CacheWriter:
    """Holds `directory` for one run; see the module's docstring."""

    def __init__(self, directory: Path, spec: ShardSpec, parameters: Mapping | None = None):
        self.directory = Path(directory)
        self.spec = spec
        self.parameters = dict(parameters or {})
        self.cached: dict[str, CachedFile] = {}
        self._lock = writer_lock(self.directory)
        self._created: str | None = None

    def __enter__(self) -> CacheWriter:
        _check_writable(self.directory)
        self._lock.__enter__()
        try:
            remove_orphans(self.directory)
            if (self.directory / MANIFEST).exists():
                manifest = read_manifest(self.directory)
                _refuse_other_producer(self.directory, manifest_producer(self.directory,
                                                                         manifest),
                                       self.spec.encoder)  # fmt: skip
                self._created = manifest.get("created")
            self.cached = cached_files(self.directory, self.spec.encoder)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._lock.__exit__(*exc_info)

    def write_manifest(self, failures: Sequence[Mapping[str, str]]) -> None:
        """Count the finished shards into `manifest.json`, with the run's failures."""
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self._created = self._created or now
        write_manifest(self.directory, {
            **summarise(self.directory),
            "failures": list(failures),
            "embedding_dtype": self.spec.embedding_dtype,
            "brogue_version": __version__,
            "parameters": self.parameters,
            "created": self._created,
            "updated": now,
        }, self.spec.encoder)  # fmt: skip


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".writable"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise CacheError(f"{directory}: output folder is not writable ({error.strerror})"
                         ) from None


def _refuse_other_producer(directory: Path, found: EncoderRecord, ours: EncoderRecord) -> None:
    if found.differences(ours) == [f"precision {ours.precision!r} instead of "
                                   f"{found.precision!r}"]:
        raise CacheError(
            f"{directory} holds {found.precision} embeddings, not {ours.precision}; refusing to "
            f"mix two precisions: choose another --out or pass --precision {found.precision}")
    if found.differences(ours):
        raise CacheError(
            f"{directory} holds embeddings of {found.describe()}, not {ours.describe()}; "
            "refusing to mix two producers: choose another --out or delete it")
