"""`manifest.json`: what a cache holds, counted from its shards, and who produced it.

A JSON object with `schema_version`; the counting sections `summarise` builds from the shards'
clip tables (`shards`, `labels`, `speakers`, `totals`); the producer (`encoder`, an
`EncoderRecord`; schema 2 wrote `yamnet`); and what the extraction run adds: `failures`
[{path, reason}], `embedding_dtype`, `brogue_version`, `parameters`, `created`, `updated`.
`shards` counts each shard's rows, stale ones included; `labels`, `speakers` and `totals`
count clips. Readers read only the shards the manifest lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py

from brogue import atomic

from .producer import EncoderRecord
from .schema import (
    MANIFEST,
    READABLE_SCHEMAS,
    SCHEMA_VERSION,
    CacheError,
    complete_shards,
    live_rows,
    read_columns,
)

_SUMMARY_COLUMNS = ("path", "label", "speaker", "duration", "num_frames", "speech_frames")


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
                for key, value in (("clips", 1), ("frames", int(num_frames)),
                                   ("speech_frames", int(speech_frames))):  # fmt: skip
                    counts[key] = counts.get(key, 0) + value
            totals["seconds"] += float(seconds)
    return {
        "shards": shards,
        "labels": dict(sorted(labels.items())),
        "speakers": dict(sorted(speakers.items())),
        "totals": totals,
    }


def write_manifest(directory: Path, manifest: Mapping, encoder: EncoderRecord) -> None:
    """Write `manifest.json` atomically, with this schema version and the producer record."""
    body = {key: value for key, value in manifest.items() if key != "yamnet"}
    body |= {"schema_version": SCHEMA_VERSION, "encoder": json.loads(encoder.to_json())}
    atomic.write_text(Path(directory) / MANIFEST,
                      json.dumps(body, indent=2, ensure_ascii=False) + "\n")  # fmt: skip


def read_manifest(directory: Path) -> dict:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise CacheError(f"no {MANIFEST} in {directory}; run `brogue extract` first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise CacheError(f"{path} is not JSON ({error}); `brogue verify --repair` rebuilds it"
                         ) from None
    if manifest.get("schema_version") not in READABLE_SCHEMAS:
        raise CacheError(
            f"{path} has schema version {manifest.get('schema_version')}, this brogue reads "
            f"{READABLE_SCHEMAS}; extract the cache again"
        )
    return manifest


def manifest_producer(directory: Path, manifest: Mapping) -> EncoderRecord:
    """The producer a manifest records, from schema 3's `encoder` or schema 2's `yamnet`."""
    try:
        if "encoder" in manifest:
            return EncoderRecord.from_mapping(manifest["encoder"])
        return EncoderRecord.from_schema2(manifest["yamnet"])
    except (KeyError, TypeError):
        raise CacheError(f"{Path(directory) / MANIFEST} does not say which encoder made the "
                         "cache; `brogue verify --repair` rebuilds it") from None
