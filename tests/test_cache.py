"""The cache (`brogue.cache`): what the writer puts in is what the reader and the manifest give
back, schema 2 caches still read, and `verify --repair` rebuilds the producer record exactly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from brogue import atomic
from brogue.cache import (
    Cache,
    CachedFile,
    CacheError,
    ClipMeta,
    EncoderRecord,
    ShardWriter,
    complete_shards,
    verify,
)
from brogue.cache.manifest import read_manifest, summarise, write_manifest
from brogue.cache.reader import cached_files
from brogue.cache.schema import (
    CLIP_COLUMNS,
    SCHEMA_VERSION,
    next_shard_index,
    shard_path,
)

WIDTH, CLASSES = 12, 5
ENCODER = EncoderRecord("test-encoder", "test://weights", "fingerprint-a", {"layer": 3},
                        "keras", "fp32", 0.96, 0.48, WIDTH)  # fmt: skip
SCORE_NAMES = ["Speech", "Dog", "Music", "Silence", "Noise"]
# (embedding dtype, extra columns, frames per clip): float16 and a zero-frame clip included
SHARDS = [
    ("float32", ("gender", "transcript"), [3, 7, 1]),
    ("float16", (), [5, 2]),
    ("float32", ("gender",), [4, 0, 6, 2]),
]
LABELS = ["irish", "scottish", "welsh"]


def make_clip(rng: np.random.Generator, shard: int, row: int, frames: int,
              extra_columns=()) -> dict:  # fmt: skip
    """A clip of `frames` frames; odd rows lack their extra values, which must read as ""."""
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
        "embeddings": np.maximum(0, rng.normal(0.25, 1, (frames, WIDTH))),
        "speech": rng.random(frames) < 0.5,
        "scores": rng.random((frames, CLASSES), dtype=np.float32),
    }


def writer(directory: Path, index: int, **options) -> ShardWriter:
    return ShardWriter(directory, index, ENCODER, "9.9.9", score_names=SCORE_NAMES, **options)


def add(shard: ShardWriter, clip: dict) -> int:
    return shard.add_clip(clip["meta"], clip["embeddings"], clip["speech"], clip["scores"])


def write_cache(directory: Path) -> list[list[dict]]:
    rng = np.random.default_rng(0)
    written = []
    for index, (dtype, extra_columns, lengths) in enumerate(SHARDS):
        clips = [make_clip(rng, index, row, frames, extra_columns)
                 for row, frames in enumerate(lengths)]  # fmt: skip
        with writer(directory, index, embedding_dtype=dtype, extra_columns=extra_columns) as shard:
            assert [add(shard, clip) for clip in clips] == lengths
        written.append(clips)
    write_manifest(directory, summarise(directory) | {"failures": []}, ENCODER)
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
    flat = [(shard, row, clip) for shard, clips in enumerate(written)
            for row, clip in enumerate(clips)]  # fmt: skip
    assert len(table) == len(flat)
    assert table["shard"].tolist() == [shard for shard, _, _ in flat]
    assert table["row"].tolist() == [row for _, row, _ in flat]
    assert table["path"].tolist() == [clip["meta"].path for _, _, clip in flat]
    assert table["content_hash"].tolist() == [clip["meta"].content_hash for _, _, clip in flat]
    assert table["duration"].tolist() == [clip["meta"].duration for _, _, clip in flat]
    assert table["num_frames"].tolist() == [len(clip["speech"]) for _, _, clip in flat]
    assert table["speech_frames"].tolist() == [int(clip["speech"].sum()) for _, _, clip in flat]
    for name in ("gender", "transcript"):  # shards without the column read as ""
        assert table[name].tolist() == [clip["meta"].extra.get(name, "") for _, _, clip in flat]
    assert table["transcript"][0] == "transcript 0 ‘ü’" and table["gender"][-2] == "gender 2 ‘ü’"
    irish = table.select(table["label"] == "irish")
    assert set(irish["label"]) == {"irish"} and 0 < len(irish) < len(table)


def test_frames_read_back_as_written(cache: Cache, written):
    assert cache.encoder == ENCODER and cache.embedding_size == WIDTH
    assert cache.score_names() == SCORE_NAMES
    for shard, clips in enumerate(written):
        frames = cache.read_frames(shard, 0, cache.num_frames(shard),
                                   ("embeddings", "speech", "clip_index", "scores"))  # fmt: skip
        assert frames["embeddings"].dtype == np.float32 and frames["speech"].dtype == bool
        np.testing.assert_array_equal(
            frames["embeddings"], np.concatenate([stored_embeddings(c, shard) for c in clips]))
        for name in ("speech", "scores"):
            np.testing.assert_array_equal(frames[name], np.concatenate([c[name] for c in clips]))
        np.testing.assert_array_equal(frames["clip_index"], np.repeat(
            np.arange(len(clips)), [len(c["speech"]) for c in clips]))
        for row, clip in enumerate(clips):
            one = cache.clip_frames(shard, row)
            np.testing.assert_array_equal(one["embeddings"], stored_embeddings(clip, shard))
            np.testing.assert_array_equal(one["speech"], clip["speech"])
    with pytest.raises(ValueError, match="outside shard 2"):
        cache.read_frames(2, 5, cache.num_frames(2) + 1)


def test_summary_counts_equal_hand_counts(cache_dir: Path, written):
    labels, speakers = {}, {}
    totals = {"clips": 0, "frames": 0, "speech_frames": 0, "seconds": 0.0}
    for clip in (clip for clips in written for clip in clips):
        meta, frames, speech = clip["meta"], len(clip["speech"]), int(clip["speech"].sum())
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
    manifest = read_manifest(cache_dir)
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
        assert file.attrs["schema_version"] == SCHEMA_VERSION == 3
        assert json.loads(file.attrs["encoder"]) == dataclasses.asdict(ENCODER)
        assert file["scores"].attrs["names"].tolist() == SCORE_NAMES
        assert "top_class" not in file


def test_an_encoder_without_scores_stores_none(tmp_path: Path):
    clip = make_clip(np.random.default_rng(8), 0, 0, 4)
    with ShardWriter(tmp_path, 0, ENCODER, "9.9.9") as shard:
        shard.add_clip(clip["meta"], clip["embeddings"], clip["speech"])
        with pytest.raises(ValueError, match="expected frames"):
            add(shard, clip)  # scores where the shard keeps none
    write_manifest(tmp_path, summarise(tmp_path), ENCODER)
    with Cache(tmp_path) as cache, h5py.File(tmp_path / "shard-00000.h5") as file:
        assert "scores" not in file and cache.score_names() is None
        with pytest.raises(CacheError, match="stores no scores"):
            cache.read_frames(0, 0, 4, ("scores",))
        np.testing.assert_array_equal(cache.clip_frames(0, 0)["speech"], clip["speech"])


def test_cached_files_lists_written_clips_and_refuses_other_producers(cache_dir: Path, written):
    expected = {clip["meta"].path: CachedFile(clip["meta"].content_hash, 0, 0)
                for clips in written for clip in clips}  # fmt: skip
    assert cached_files(cache_dir, ENCODER) == expected
    # The runtime and the handle may differ: fp32 runtimes agree to 1e-5.
    moved = dataclasses.replace(ENCODER, handle="/elsewhere", runtime="openvino")
    assert cached_files(cache_dir, moved) == expected
    for change, words in ((dict(fingerprint="fingerprint-b"), "fingerprint 'fingerprint-a'"),
                          (dict(precision="bf16"), "precision 'fp32' instead of 'bf16'"),
                          (dict(params={"layer": 4}), "other params"),
                          (dict(name="ge2e"), "name 'test-encoder'")):  # fmt: skip
        with pytest.raises(CacheError, match=words):
            cached_files(cache_dir, dataclasses.replace(ENCODER, **change))


def test_cache_refuses_shards_of_another_producer(tmp_path: Path):
    write_cache(tmp_path)
    manifest = read_manifest(tmp_path)
    write_manifest(tmp_path, manifest, dataclasses.replace(ENCODER, fingerprint="fingerprint-b"))
    with Cache(tmp_path) as cache, pytest.raises(CacheError, match="delete the cache"):
        cache.clips()


def write_schema2_shard(path: Path, rng: np.random.Generator) -> dict:
    """A shard as brogue 0.2 wrote it: YAMNet's 1024-d embeddings, its 521 scores and each
    frame's top class, the producer in `yamnet_*` attributes."""
    frames = [3, 4]
    scores = rng.random((7, 521), dtype=np.float32)
    scores[[0, 2, 5], 0] = 2.0  # frames 0, 2 and 5 are Speech
    embeddings = rng.random((7, 1024), dtype=np.float32)
    params = {"patch_window_seconds": 0.96, "patch_hop_seconds": 0.48, "embedding_size": 1024,
              "num_classes": 521}  # fmt: skip
    with h5py.File(path, "w") as file:
        file.attrs.update({"schema_version": 2, "yamnet_handle": "old://yamnet",
                           "yamnet_fingerprint": "old-fingerprint",
                           "yamnet_params": json.dumps(params), "yamnet_runtime": "openvino",
                           "yamnet_precision": "fp32", "embedding_dtype": "float32",
                           "brogue_version": "0.2.0"})  # fmt: skip
        file["embeddings"], file["scores"] = embeddings, scores
        file["top_class"] = scores.argmax(axis=1).astype(np.int16)
        file["clip_index"] = np.repeat(np.arange(2, dtype=np.int32), frames)
        strings = h5py.string_dtype()
        for name, values in (("path", ["a.wav", "b.wav"]), ("label", ["irish", "welsh"]),
                             ("speaker", ["s1", "s2"]), ("content_hash", ["h1", "h2"])):
            file[f"clips/{name}"] = np.array(values, dtype=strings)
        file["clips/duration"] = np.array([1.5, 2.0])
        file["clips/frame_start"] = np.array([0, 3], np.int64)
        file["clips/num_frames"] = np.array(frames, np.int32)
        file["clips/speech_frames"] = np.array([2, 1], np.int32)
        file["clips/file_size"] = file["clips/file_mtime_ns"] = np.zeros(2, np.int64)
    return {"params": params, "embeddings": embeddings}


def test_a_schema_2_cache_still_reads(tmp_path: Path):
    old = write_schema2_shard(tmp_path / "shard-00000.h5", np.random.default_rng(9))
    manifest = summarise(tmp_path) | {"schema_version": 2, "failures": [], "yamnet": {
        "handle": "old://yamnet", "fingerprint": "old-fingerprint", "params": old["params"],
        "runtime": "openvino", "precision": "fp32"}}  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with Cache(tmp_path) as cache:
        assert cache.encoder == EncoderRecord("yamnet", "old://yamnet", "old-fingerprint",
                                              old["params"], "openvino", "fp32", 0.96, 0.48, 1024)
        frames = cache.read_frames(0, 0, 7, ("embeddings", "speech"))
        assert frames["speech"].tolist() == [True, False, True, False, False, True, False]
        np.testing.assert_array_equal(frames["embeddings"], old["embeddings"])
        assert cache.clips()["speech_frames"].tolist() == [2, 1]
    assert verify(tmp_path).problems == []


def test_repair_rebuilds_a_lost_manifest_with_the_exact_producer(tmp_path: Path):
    write_cache(tmp_path)
    before = read_manifest(tmp_path)
    (tmp_path / "manifest.json").unlink()
    verdict = verify(tmp_path, repair=True)
    assert verdict.problems == [] and verdict.repaired == ["rebuilt manifest.json"]
    after = read_manifest(tmp_path)
    for field in dataclasses.fields(EncoderRecord):
        assert after["encoder"][field.name] == before["encoder"][field.name], field.name
    assert EncoderRecord.from_mapping(after["encoder"]) == ENCODER
    for section in ("shards", "labels", "speakers", "totals"):
        assert after[section] == before[section], section
    with Cache(tmp_path) as cache:  # a bf16 or other cache would be refused here if it were not
        assert len(cache.clips()) == sum(len(lengths) for _, _, lengths in SHARDS)


def test_repair_rebuilds_an_unreadable_manifest(tmp_path: Path):
    write_cache(tmp_path)
    (tmp_path / "manifest.json").write_text("{ half a manifest")
    assert verify(tmp_path).problems[0].startswith("manifest.json: ")
    assert verify(tmp_path, repair=True).problems == []
    assert EncoderRecord.from_mapping(read_manifest(tmp_path)["encoder"]) == ENCODER


def test_stray_temporary_is_ignored_by_readers_and_writers(tmp_path: Path):
    write_cache(tmp_path)
    before = summarise(tmp_path)
    stray = atomic.temporary_path(shard_path(tmp_path, 3))
    stray.write_bytes(b"half a shard from a crashed run")
    assert [path.name for path in complete_shards(tmp_path)] == [
        "shard-00000.h5", "shard-00001.h5", "shard-00002.h5",
    ]  # fmt: skip
    assert summarise(tmp_path) == before
    assert next_shard_index(tmp_path) == 3
    with writer(tmp_path, 3) as shard:
        add(shard, make_clip(np.random.default_rng(1), 3, 0, 2))
    assert sorted(path.name for path in tmp_path.glob("shard-00003*")) == [
        "shard-00003.h5", stray.name,
    ]  # fmt: skip
    assert stray.read_bytes() == b"half a shard from a crashed run"


def test_close_never_overwrites_a_shard_that_appeared_meanwhile(tmp_path: Path):
    rng = np.random.default_rng(5)
    first, second = make_clip(rng, 0, 0, 3), make_clip(rng, 0, 1, 4)
    late = writer(tmp_path, 0)
    add(late, first)
    with writer(tmp_path, 0) as racing:  # a second writer that took the same index
        add(racing, second)
    assert late.close() == shard_path(tmp_path, 1)
    with h5py.File(tmp_path / "shard-00000.h5", "r") as file:
        assert file["clips/path"].asstr()[()].tolist() == [second["meta"].path]
    with h5py.File(tmp_path / "shard-00001.h5", "r") as file:
        assert file["clips/path"].asstr()[()].tolist() == [first["meta"].path]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["shard-00000.h5", "shard-00001.h5"]


def test_an_edited_file_replaces_its_stale_row(tmp_path: Path):
    rng = np.random.default_rng(7)
    old, other, new = make_clip(rng, 0, 0, 3), make_clip(rng, 0, 1, 2), make_clip(rng, 1, 0, 5)
    new["meta"] = ClipMeta(old["meta"].path, old["meta"].label, old["meta"].speaker, 2.75,
                           "hash-after-editing")  # fmt: skip
    for index, clips in enumerate(([old, other], [new])):
        with writer(tmp_path, index) as shard:
            for clip in clips:
                add(shard, clip)
    summary = summarise(tmp_path)
    write_manifest(tmp_path, summary, ENCODER)
    table = Cache(tmp_path).clips()
    rows = zip(table["path"], table["content_hash"], table["shard"], strict=True)
    assert sorted(rows) == sorted([(other["meta"].path, other["meta"].content_hash, 0),
                                   (old["meta"].path, "hash-after-editing", 1)])  # fmt: skip
    assert summary["totals"]["clips"] == 2 and summary["totals"]["frames"] == 2 + 5
    assert [shard["clips"] for shard in summary["shards"]] == [2, 1]  # rows, the stale one too
    assert cached_files(tmp_path, ENCODER)[old["meta"].path].content_hash == "hash-after-editing"


def test_exception_inside_with_leaves_no_shard(tmp_path: Path):
    with pytest.raises(KeyboardInterrupt), writer(tmp_path, 0) as shard:
        add(shard, make_clip(np.random.default_rng(2), 0, 0, 3))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_failed_close_leaves_no_shard(tmp_path: Path, monkeypatch):
    def full_disk(temporary: Path, final: Path, overwrite: bool) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(atomic, "publish", full_disk)
    shard = writer(tmp_path, 0)
    add(shard, make_clip(np.random.default_rng(3), 0, 0, 3))
    with pytest.raises(OSError, match="no space"):
        shard.close()
    assert list(tmp_path.iterdir()) == []


def test_a_clip_written_in_pieces_reads_back_as_written_whole(tmp_path: Path):
    rng = np.random.default_rng(5)
    first, long, last = (make_clip(rng, 0, row, frames) for row, frames in enumerate((2, 9, 3)))
    abandoned = make_clip(rng, 0, 3, 4)
    with writer(tmp_path, 0) as shard:
        add(shard, first)
        # A clip whose second piece failed: its first piece is forgotten.
        shard.add_frames(abandoned["embeddings"][:3], abandoned["speech"][:3],
                         abandoned["scores"][:3])
        shard.drop_frames()
        for piece in (slice(0, 4), slice(4, 5), slice(5, 9)):
            shard.add_frames(long["embeddings"][piece], long["speech"][piece],
                             long["scores"][piece])
        assert (shard.frames, shard.clips) == (2, 1)  # the clip in progress is not counted
        assert shard.end_clip(long["meta"]) == 9
        add(shard, last)
    write_manifest(tmp_path, summarise(tmp_path) | {"failures": []}, ENCODER)

    with Cache(tmp_path) as cache:
        table = cache.clips()
        assert table["path"].tolist() == [clip["meta"].path for clip in (first, long, last)]
        assert table["num_frames"].tolist() == [2, 9, 3]
        for row, clip in enumerate((first, long, last)):
            stored = cache.clip_frames(0, row, ("embeddings", "speech", "scores"))
            np.testing.assert_array_equal(stored["embeddings"], stored_embeddings(clip, 0))
            np.testing.assert_array_equal(stored["speech"], clip["speech"])
            np.testing.assert_array_equal(stored["scores"], clip["scores"])


def test_finished_shards_are_never_rewritten(tmp_path: Path):
    write_cache(tmp_path)
    with pytest.raises(CacheError, match="never rewritten"):
        writer(tmp_path, 1)


def test_writer_checks_its_inputs(tmp_path: Path):
    shard = writer(tmp_path, 0, extra_columns=("gender",))
    clip = make_clip(np.random.default_rng(4), 0, 0, 3, ("gender",))
    with pytest.raises(ValueError, match=r"expected frames .*'embeddings': \(3, 12\).*got"):
        shard.add_clip(clip["meta"], clip["embeddings"][:, :2], clip["speech"], clip["scores"])
    with pytest.raises(ValueError, match=r"extra columns \['accent'\]"):
        shard.add_clip({**clip["meta"].__dict__, "extra": {"accent": "x"}}, clip["embeddings"],
                       clip["speech"], clip["scores"])  # fmt: skip
    with pytest.raises(ValueError, match="embedding_dtype must be one of"):
        writer(tmp_path, 0, embedding_dtype="float64")
    assert CLIP_COLUMNS[0] == "path"


def test_missing_manifest_or_other_schema_is_refused(tmp_path: Path):
    with pytest.raises(CacheError, match=r"no manifest\.json in .*; run `brogue extract` first"):
        Cache(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 0}))
    with pytest.raises(CacheError, match=r"schema version 0, this brogue reads \(2, 3\)"):
        Cache(tmp_path)
