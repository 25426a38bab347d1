"""The shard cache: what the writer puts in is what the reader and the manifest give back."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from brogue import atomic
from brogue.extract import shards
from brogue.extract.shards import (
    Cache,
    CachedFile,
    CacheError,
    ClipMeta,
    ShardAttrs,
    ShardWriter,
)
from brogue.extract.yamnet.params import PARAMS

ATTRS = ShardAttrs("test://yamnet", "fingerprint-a", PARAMS.to_json(), "0.1.0")
# (embedding dtype, extra columns, frames per clip): float16 and a zero-frame clip included
SHARDS = [
    ("float32", ("gender", "transcript"), [3, 7, 1]),
    ("float16", (), [5, 2]),
    ("float32", ("gender",), [4, 0, 6, 2]),
]
LABELS = ["irish", "scottish", "welsh"]


def make_clip(
    rng: np.random.Generator, shard: int, row: int, frames: int, extra_columns=()
) -> dict:
    """A clip of `frames` frames; odd rows lack their extra values, which must read as ""."""
    scores = rng.random((frames, PARAMS.num_classes), dtype=np.float32)
    scores[rng.random(frames) < 0.5, 0] = 2.0  # about half the frames are Speech
    speaker = f"SP{(shard + row) % 4}"
    return {
        "meta": ClipMeta(
            path=f"corpus/{speaker}/clip-{shard}-{row}-é€.wav",
            label=LABELS[(shard + row) % 4 % 3],
            speaker=speaker,
            duration=0.5 * frames + 0.25,
            content_hash=f"hash-{shard}-{row}",
            extra={} if row % 2 else {name: f"{name} {row} ‘ü’" for name in extra_columns},
        ),
        "scores": scores,
        "embeddings": np.maximum(0, rng.normal(0.25, 1, (frames, PARAMS.embedding_size))),
    }


def write_cache(directory: Path) -> list[list[dict]]:
    rng = np.random.default_rng(0)
    written = []
    for index, (dtype, extra_columns, lengths) in enumerate(SHARDS):
        clips = [
            make_clip(rng, index, row, frames, extra_columns) for row, frames in enumerate(lengths)
        ]
        with ShardWriter(directory, index, ATTRS, dtype, extra_columns) as writer:
            for clip in clips:
                writer.add_clip(clip["meta"], clip["scores"], clip["embeddings"])
            summary = writer.close()
        assert (summary.clips, summary.frames) == (len(lengths), sum(lengths))
        written.append(clips)
    yamnet = {"handle": ATTRS.yamnet_handle, "fingerprint": ATTRS.yamnet_fingerprint}
    manifest = shards.summarise(directory) | {"yamnet": yamnet | {"params": PARAMS.__dict__}}
    shards.write_manifest(directory, manifest)
    return written


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def written(cache_dir: Path) -> list[list[dict]]:
    return write_cache(cache_dir)


@pytest.fixture
def cache(cache_dir: Path, written) -> Cache:
    with Cache(cache_dir) as opened:
        yield opened


def stored_embeddings(clip: dict, shard: int) -> np.ndarray:
    return clip["embeddings"].astype(SHARDS[shard][0]).astype(np.float32)


def test_clips_table_lists_every_clip_in_order(cache: Cache, written):
    table = cache.clips()
    flat = [
        (shard, row, clip) for shard, clips in enumerate(written) for row, clip in enumerate(clips)
    ]
    assert len(table) == len(flat)
    assert table["shard"].tolist() == [shard for shard, _, _ in flat]
    assert table["row"].tolist() == [row for _, row, _ in flat]
    assert table["path"].tolist() == [clip["meta"].path for _, _, clip in flat]
    assert table["content_hash"].tolist() == [clip["meta"].content_hash for _, _, clip in flat]
    assert table["duration"].tolist() == [clip["meta"].duration for _, _, clip in flat]
    assert table["num_frames"].tolist() == [len(clip["scores"]) for _, _, clip in flat]
    for name in ("gender", "transcript"):  # shards without the column read as ""
        assert table[name].tolist() == [clip["meta"].extra.get(name, "") for _, _, clip in flat]
    assert table["transcript"][0] == "transcript 0 ‘ü’" and table["gender"][-2] == "gender 2 ‘ü’"
    irish = table.select(table["label"] == "irish")
    assert set(irish["label"]) == {"irish"} and 0 < len(irish) < len(table)


def test_read_frames_and_clip_frames_match_written_data(cache: Cache, written):
    shard, clips = 2, written[2]
    scores = np.concatenate([clip["scores"] for clip in clips])
    block = cache.read_frames(shard, 3, 9, ("scores", "top_class"))
    assert set(block) == {"scores", "top_class"}
    np.testing.assert_array_equal(block["scores"], scores[3:9])
    for row, clip in enumerate(clips):
        frames = cache.clip_frames(shard, row)
        assert frames["embeddings"].dtype == np.float32
        np.testing.assert_array_equal(frames["embeddings"], stored_embeddings(clip, shard))
        np.testing.assert_array_equal(frames["scores"], clip["scores"])
        np.testing.assert_array_equal(frames["top_class"], clip["scores"].argmax(axis=1))
    with pytest.raises(ValueError, match="outside shard 2"):
        cache.read_frames(shard, 5, len(scores) + 1)
    assert cache.handle == ATTRS.yamnet_handle and cache.fingerprint == ATTRS.yamnet_fingerprint


def test_summary_counts_equal_hand_counts(cache_dir: Path, written):
    labels, speakers = {}, {}
    totals = {"clips": 0, "frames": 0, "speech_frames": 0, "seconds": 0.0}
    for clip in (clip for clips in written for clip in clips):
        meta, frames = clip["meta"], len(clip["scores"])
        speech = int((clip["scores"].argmax(axis=1) == 0).sum())
        for counts in (
            labels.setdefault(meta.label, {"clips": 0, "frames": 0, "speech_frames": 0}),
            speakers.setdefault(meta.speaker, {"label": meta.label, "clips": 0, "frames": 0,
                                               "speech_frames": 0}),
            totals,
        ):  # fmt: skip
            counts["clips"] += 1
            counts["frames"] += frames
            counts["speech_frames"] += speech
        totals["seconds"] += meta.duration
    manifest = shards.read_manifest(cache_dir)
    assert manifest["labels"] == labels
    assert manifest["speakers"] == speakers
    assert manifest["totals"] == pytest.approx(totals)
    assert 0 < totals["speech_frames"] < totals["frames"]
    assert manifest["shards"] == [
        {"file": f"shard-0000{index}.h5", "clips": len(lengths), "frames": sum(lengths)}
        for index, (_, _, lengths) in enumerate(SHARDS)
    ]


def test_shard_file_carries_format_and_producer(cache_dir: Path, written):
    with h5py.File(cache_dir / "shard-00001.h5", "r") as file:
        assert file["embeddings"].dtype == np.float16
        assert file.attrs["embedding_dtype"] == "float16"
        assert file.attrs["schema_version"] == shards.SCHEMA_VERSION
        assert file.attrs["yamnet_fingerprint"] == ATTRS.yamnet_fingerprint
        assert json.loads(file.attrs["yamnet_params"]) == PARAMS.__dict__
        assert file["clips/speech_frames"][()].tolist() == [
            int((clip["scores"].argmax(axis=1) == 0).sum()) for clip in written[1]
        ]


def test_cached_clips_lists_written_clips_and_refuses_other_producers(cache_dir: Path, written):
    expected = {
        clip["meta"].path: CachedFile(clip["meta"].content_hash, 0, 0)
        for clips in written
        for clip in clips
    }
    assert shards.cached_clips(cache_dir, ATTRS) == expected
    other = ShardAttrs("test://yamnet", "fingerprint-b", PARAMS.to_json(), "0.1.0")
    with pytest.raises(
        CacheError, match="YAMNet fingerprint fingerprint-a instead of fingerprint-b"
    ):
        shards.cached_clips(cache_dir, other)


def test_cache_refuses_shards_of_another_yamnet(tmp_path: Path):
    write_cache(tmp_path)
    manifest = shards.read_manifest(tmp_path)
    manifest["yamnet"]["fingerprint"] = "fingerprint-b"
    shards.write_manifest(tmp_path, manifest)
    with Cache(tmp_path) as cache, pytest.raises(CacheError, match="delete the cache"):
        cache.clips()


def test_stray_temporary_is_ignored_by_readers_and_writers(tmp_path: Path):
    write_cache(tmp_path)
    before = shards.summarise(tmp_path)
    stray = atomic.temporary_path(shards.shard_path(tmp_path, 3))
    stray.write_bytes(b"half a shard from a crashed run")
    assert [path.name for path in shards.complete_shards(tmp_path)] == [
        "shard-00000.h5", "shard-00001.h5", "shard-00002.h5",
    ]  # fmt: skip
    assert shards.summarise(tmp_path) == before
    assert shards.next_shard_index(tmp_path) == 3
    clip = make_clip(np.random.default_rng(1), 3, 0, 2)
    with ShardWriter(tmp_path, 3, ATTRS) as writer:
        writer.add_clip(clip["meta"], clip["scores"], clip["embeddings"])
    assert sorted(path.name for path in tmp_path.glob("shard-00003*")) == [
        "shard-00003.h5", stray.name,
    ]  # fmt: skip
    assert stray.read_bytes() == b"half a shard from a crashed run"


def test_close_never_overwrites_a_shard_that_appeared_meanwhile(tmp_path: Path):
    rng = np.random.default_rng(5)
    first, second = make_clip(rng, 0, 0, 3), make_clip(rng, 0, 1, 4)
    writer = ShardWriter(tmp_path, 0, ATTRS)
    writer.add_clip(first["meta"], first["scores"], first["embeddings"])
    with ShardWriter(tmp_path, 0, ATTRS) as racing:  # a second writer that took the same index
        racing.add_clip(second["meta"], second["scores"], second["embeddings"])
    summary = writer.close()
    assert summary.path == shards.shard_path(tmp_path, 1)
    with h5py.File(tmp_path / "shard-00000.h5", "r") as file:
        assert file["clips/path"].asstr()[()].tolist() == [second["meta"].path]
    with h5py.File(tmp_path / "shard-00001.h5", "r") as file:
        assert file["clips/path"].asstr()[()].tolist() == [first["meta"].path]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["shard-00000.h5", "shard-00001.h5"]


def test_a_clip_written_in_pieces_equals_it_written_whole(tmp_path: Path):
    rng = np.random.default_rng(6)
    clip, dropped = make_clip(rng, 0, 0, 9), make_clip(rng, 0, 1, 5)
    with ShardWriter(tmp_path / "whole", 0, ATTRS) as writer:
        writer.add_clip(clip["meta"], clip["scores"], clip["embeddings"])
    with ShardWriter(tmp_path / "pieces", 0, ATTRS) as writer:
        writer.begin_clip(dropped["meta"])
        writer.add_frames(dropped["scores"][:3], dropped["embeddings"][:3])
        writer.abort_clip()  # its file failed after three frames: nothing of it is kept
        writer.begin_clip(clip["meta"])
        for start, stop in ((0, 4), (4, 4), (4, 9)):
            writer.add_frames(clip["scores"][start:stop], clip["embeddings"][start:stop])
        assert writer.end_clip() == 9
    with h5py.File(tmp_path / "whole/shard-00000.h5") as whole:
        with h5py.File(tmp_path / "pieces/shard-00000.h5") as pieces:
            for name in (*shards.FRAME_COLUMNS, *(f"clips/{c}" for c in shards.CLIP_COLUMNS)):
                np.testing.assert_array_equal(pieces[name][()], whole[name][()])


def test_an_edited_file_replaces_its_stale_row(tmp_path: Path):
    rng = np.random.default_rng(7)
    old, other, new = make_clip(rng, 0, 0, 3), make_clip(rng, 0, 1, 2), make_clip(rng, 1, 0, 5)
    new["meta"] = ClipMeta(old["meta"].path, old["meta"].label, old["meta"].speaker, 2.75,
                           "hash-after-editing")  # fmt: skip
    for index, clips in enumerate(([old, other], [new])):
        with ShardWriter(tmp_path, index, ATTRS) as writer:
            for clip in clips:
                writer.add_clip(clip["meta"], clip["scores"], clip["embeddings"])
    yamnet = {"handle": ATTRS.yamnet_handle, "fingerprint": ATTRS.yamnet_fingerprint}
    summary = shards.summarise(tmp_path)
    shards.write_manifest(tmp_path, summary | {"yamnet": yamnet | {"params": PARAMS.__dict__}})

    table = Cache(tmp_path).clips()
    rows = zip(table["path"], table["content_hash"], table["shard"], strict=True)
    assert sorted(rows) == sorted(
        [(other["meta"].path, other["meta"].content_hash, 0),
         (old["meta"].path, "hash-after-editing", 1)]
    )  # fmt: skip
    assert summary["totals"]["clips"] == 2 and summary["totals"]["frames"] == 2 + 5
    assert [shard["clips"] for shard in summary["shards"]] == [2, 1]  # rows, the stale one too
    assert shards.cached_clips(tmp_path, ATTRS)[old["meta"].path].content_hash == (
        "hash-after-editing"
    )


def test_exception_inside_with_leaves_no_shard(tmp_path: Path):
    clip = make_clip(np.random.default_rng(2), 0, 0, 3)
    with pytest.raises(KeyboardInterrupt), ShardWriter(tmp_path, 0, ATTRS) as writer:
        writer.add_clip(clip["meta"], clip["scores"], clip["embeddings"])
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_failed_close_leaves_no_shard(tmp_path: Path, monkeypatch):
    def full_disk(temporary: Path, final: Path, overwrite: bool) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(atomic, "publish", full_disk)
    clip = make_clip(np.random.default_rng(3), 0, 0, 3)
    writer = ShardWriter(tmp_path, 0, ATTRS)
    writer.add_clip(clip["meta"], clip["scores"], clip["embeddings"])
    with pytest.raises(OSError, match="no space"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_finished_shards_are_never_rewritten(tmp_path: Path):
    write_cache(tmp_path)
    with pytest.raises(CacheError, match="never rewritten"):
        ShardWriter(tmp_path, 1, ATTRS)


def test_writer_checks_its_inputs(tmp_path: Path):
    writer = ShardWriter(tmp_path, 0, ATTRS, extra_columns=("gender",))
    clip = make_clip(np.random.default_rng(4), 0, 0, 3, ("gender",))
    with pytest.raises(ValueError, match=r"embeddings \[N, 1024\] with the same N, got"):
        writer.add_clip(clip["meta"], clip["scores"], clip["embeddings"][:2])
    with pytest.raises(ValueError, match=r"extra columns \['accent'\]"):
        writer.add_clip({**clip["meta"].__dict__, "extra": {"accent": "x"}}, clip["scores"],
                        clip["embeddings"])  # fmt: skip
    with pytest.raises(ValueError, match="embedding_dtype must be one of"):
        ShardWriter(tmp_path, 0, ATTRS, embedding_dtype="float64")


def test_missing_manifest_or_other_schema_is_refused(tmp_path: Path):
    with pytest.raises(CacheError, match=r"no manifest\.json in .*; run `brogue extract` first"):
        Cache(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 0}))
    with pytest.raises(CacheError, match="schema version 0, this brogue reads 2"):
        Cache(tmp_path)
