"""`brogue verify`: check a shard cache against its documented format, and repair what is safe.

Every finished shard must open with the datasets and shapes `schema.py` documents, and its
frame ranges must tile its frames (`frame_start`, `num_frames`, `clip_index` agree). No clip
(path and content hash) may be stored twice, no temporary file may be left by a dead writer,
and the manifest's counts must be what the shards hold. `repair` rebuilds the manifest from
the shards that open and removes orphan temporaries; it never deletes a finished shard.
"""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

import h5py
import numpy as np

from .lock import is_locked, writer_lock
from .manifest import read_manifest, summarise, write_manifest
from .reader import shard_producer, stored_clips
from .schema import (
    CLIP_COLUMNS,
    MANIFEST,
    SCHEMA_VERSION,
    CacheError,
    complete_shards,
    speech_column,
)
from .writer import orphans, remove_orphans


@dataclasses.dataclass
class Verdict:
    directory: Path
    shards: int = 0
    clips: int = 0
    frames: int = 0
    stale: int = 0  # rows of files edited and extracted again: superseded, not a problem
    problems: list[str] = dataclasses.field(default_factory=list)
    repaired: list[str] = dataclasses.field(default_factory=list)

    def line(self) -> str:
        counts = (f"{self.shards} shards, {self.clips} clips, {self.frames} frames"
                  + (f", {self.stale} stale rows" if self.stale else ""))  # fmt: skip
        repaired = f"; repaired: {', '.join(self.repaired)}" if self.repaired else ""
        if not self.problems:
            return f"ok: {self.directory}: {counts}{repaired}"
        return f"{len(self.problems)} problem(s) in {self.directory}: {counts}{repaired}"


def verify(directory: Path, repair: bool = False) -> Verdict:
    """Check the cache in `directory`; with `repair`, fix the manifest and orphans first."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CacheError(f"{directory}: no such cache folder")
    verdict = Verdict(directory)
    if repair:
        with writer_lock(directory):
            _repair(directory, verdict)
    _check(directory, verdict)
    return verdict


def _check(directory: Path, verdict: Verdict) -> None:
    readable, seen = [], collections.Counter()
    for path in complete_shards(directory):
        problems = _check_shard(path)
        verdict.problems += problems
        if problems:
            continue
        readable.append(path)
        seen.update(stored_clips(path))
    verdict.problems += [f"{path} (content {digest[:12]}) is stored {count} times"
                         for (path, digest), count in seen.items() if count > 1]  # fmt: skip
    if not is_locked(directory):  # a running writer's temporaries are its work in progress
        verdict.problems += [f"{path.name}: orphan temporary file (brogue verify --repair "
                             "removes it)" for path in orphans(directory)]  # fmt: skip
    summary = summarise(directory, readable)
    verdict.shards = len(summary["shards"])
    verdict.clips, verdict.frames = summary["totals"]["clips"], summary["totals"]["frames"]
    verdict.stale = sum(shard["clips"] for shard in summary["shards"]) - verdict.clips
    verdict.problems += _check_manifest(directory, summary)


def _check_shard(path: Path) -> list[str]:
    try:
        with h5py.File(path, "r") as file:
            return _shard_problems(path, file)
    except OSError as error:
        return [f"{path.name} does not open ({str(error).splitlines()[0]})"]


def _shard_problems(path: Path, file: h5py.File) -> list[str]:
    name = path.name
    try:
        producer = shard_producer(path, file)
    except (CacheError, KeyError, ValueError, TypeError) as error:
        return [f"{name}: no readable producer record ({str(error).splitlines()[0]})"]
    speech = speech_column(file)
    missing = [column for column in ("embeddings", speech, "clip_index", "clips")
               if column not in file]  # fmt: skip
    missing += [f"clips/{column}" for column in CLIP_COLUMNS
                if "clips" in file and column not in file["clips"]]  # fmt: skip
    if missing:
        return [f"{name} lacks {', '.join(missing)}"]
    frames = len(file["clip_index"])
    expected = {"embeddings": (frames, producer.embedding_size), speech: (frames,)}
    if "scores" in file:
        expected["scores"] = (frames, file["scores"].shape[1] if file["scores"].ndim == 2 else 0)
    problems = [f"{name}: {column} has shape {file[column].shape}, expected {shape}"
                for column, shape in expected.items() if file[column].shape != shape]  # fmt: skip
    clips = file["clips"]
    lengths = {column: clips[column].shape for column in clips}
    if len(set(lengths.values())) != 1 or len(next(iter(lengths.values()))) != 1:
        return [*problems, f"{name}: clip columns differ in shape: {lengths}"]
    counts, starts = clips["num_frames"][()].astype(np.int64), clips["frame_start"][()]
    if (counts < 0).any() or counts.sum() != frames:
        problems.append(f"{name}: clips' num_frames add up to {counts.sum()}, not {frames}")
    elif not np.array_equal(starts, np.cumsum(counts) - counts):
        problems.append(f"{name}: frame_start does not follow num_frames")
    elif not np.array_equal(file["clip_index"][()], np.repeat(np.arange(len(counts)), counts)):
        problems.append(f"{name}: clip_index does not match the clips' frame ranges")
    elif (clips["speech_frames"][()] > counts).any():
        problems.append(f"{name}: a clip has more speech frames than frames")
    return problems


def _check_manifest(directory: Path, summary: dict) -> list[str]:
    try:
        manifest = read_manifest(directory)
    except (CacheError, ValueError) as error:
        return [f"{MANIFEST}: {str(error).splitlines()[0]} (--repair rebuilds it)"]
    problems = [
        f"{MANIFEST}: {section} differ from the shards (--repair rebuilds it)"
        for section in ("shards", "labels", "speakers")
        if manifest.get(section) != summary[section]
    ]
    totals = manifest.get("totals", {})
    if {key: totals.get(key) for key in ("clips", "frames", "speech_frames")} != {
        key: summary["totals"][key] for key in ("clips", "frames", "speech_frames")
    } or not np.isclose(totals.get("seconds", -1.0), summary["totals"]["seconds"]):
        problems.append(f"{MANIFEST}: totals differ from the shards (--repair rebuilds it)")
    return problems


def _repair(directory: Path, verdict: Verdict) -> None:
    removed = remove_orphans(directory)
    if removed:
        verdict.repaired.append(f"removed {len(removed)} orphan temporaries")
    readable = [path for path in complete_shards(directory) if not _check_shard(path)]
    if not readable:
        return
    summary = summarise(directory, readable)
    try:
        manifest = read_manifest(directory)
    except CacheError:
        manifest = _from_shard(readable[-1])
    with h5py.File(readable[-1], "r") as file:
        producer = shard_producer(readable[-1], file)
    if any(manifest.get(key) != value for key, value in summary.items()) or (
            manifest.get("schema_version") != SCHEMA_VERSION):
        write_manifest(directory, {**manifest, **summary}, producer)
        verdict.repaired.append(f"rebuilt {MANIFEST}")


def _from_shard(path: Path) -> dict:
    """What a lost manifest said beyond the counts and the producer, as far as a shard says it:
    the run's failures and parameters are gone with it."""
    with h5py.File(path, "r") as file:
        attrs = file.attrs
        return {"failures": [], "embedding_dtype": str(attrs["embedding_dtype"]),
                "brogue_version": str(attrs["brogue_version"]), "parameters": {}}
