"""The extraction stage end to end: corpus -> YAMNet -> shards, resumed, refused, reported."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from brogue import atomic
from brogue.cache import MANIFEST, Cache, CacheError, complete_shards
from brogue.extract import decode, pipeline
from brogue.extract.audio import load_audio
from brogue.extract.corpus import ClipSource, folder_clips, manifest_clips, openslr83_clips
from brogue.extract.decode import TASKS_PER_WORKER, prepared_in_order
from brogue.extract.yamnet import engines
from brogue.extract.yamnet.params import PARAMS
from brogue.main import main


def run(sources, engine, out: Path, **options) -> pipeline.RunReport:
    options.setdefault("workers", 0)
    return pipeline.run(sources, engine, out, progress=False, **options)


def count_infer_calls(monkeypatch: pytest.MonkeyPatch, engine, fail_on_call: int | None = None):
    calls = []
    real = type(engine).infer.__get__(engine)

    def counting(patches):
        calls.append(len(patches))
        if len(calls) == fail_on_call:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-run
        return real(patches)

    monkeypatch.setattr(engine, "infer", counting)
    return calls


def hand_count(samples: int) -> int:
    """YAMNet's frames for a clip, by integer arithmetic: one 15,600-sample window, then one
    more per 7,680 samples begun. (The Hub's float32 count differs on exact multiples.)"""
    assert (samples - 15_600) % 7_680 != 0, "on a hop boundary: the float32 count may differ"
    return 1 + max(0, -(-(samples - 15_600) // 7_680))


def test_openslr83_layout_to_shards(synthetic_corpus, native_engine, tmp_path):
    sources = openslr83_clips(synthetic_corpus)
    report = run(sources, native_engine, tmp_path / "cache", shard_frames=40, workers=1)

    assert (report.clips, report.cached, report.failures) == (24, 0, [])
    cache = Cache(tmp_path / "cache")
    clips = cache.clips()
    # Shards rotate by frames: each but the last was published on reaching 40 frames.
    frames = [shard["frames"] for shard in cache.manifest["shards"]]
    assert len(frames) >= 2 and sum(frames) == report.frames
    assert all(40 <= count < 40 + clips["num_frames"].max() for count in frames[:-1])
    assert sorted(clips["path"]) == sorted(
        str(source.path.relative_to(synthetic_corpus)) for source in sources
    )
    assert set(clips["label"]) == {"Midlands", "Northern", "Scottish", "Southern"}
    assert len(set(clips["speaker"])) == 8
    assert set(clips["gender"]) == {"female", "male"}
    assert all(transcript for transcript in clips["transcript"])
    assert cache.encoder.fingerprint == native_engine.fingerprint

    for row in range(len(clips)):
        path = synthetic_corpus / clips["path"][row]
        info = sf.info(path)
        assert clips["num_frames"][row] == hand_count(len(load_audio(path)))
        assert clips["duration"][row] == pytest.approx(info.frames / info.samplerate, abs=1e-4)

    # A clip's stored frames are what the engine gives for that file alone.
    shard, row = int(clips["shard"][5]), int(clips["row"][5])
    stored = cache.clip_frames(shard, row, ("embeddings", "speech", "scores"))
    alone = native_engine.frames([load_audio(synthetic_corpus / clips["path"][5])])[0]
    np.testing.assert_allclose(stored["embeddings"], alone.embeddings, atol=1e-5)
    np.testing.assert_allclose(stored["scores"], alone.scores, atol=1e-5)

    # The fixture's construction: 4 accents x 2 speakers x 3 clips.
    manifest = json.loads((tmp_path / "cache" / MANIFEST).read_text())
    assert manifest["totals"]["clips"] == 24
    assert manifest["totals"]["frames"] == sum(
        hand_count(len(load_audio(source.path))) for source in sources
    )
    assert len(manifest["speakers"]) == 8
    assert all(counts["clips"] == 3 for counts in manifest["speakers"].values())
    assert {label: counts["clips"] for label, counts in manifest["labels"].items()} == {
        "Midlands": 6, "Northern": 6, "Scottish": 6, "Southern": 6}
    assert manifest["encoder"]["fingerprint"] == native_engine.fingerprint
    assert manifest["encoder"]["name"] == "yamnet" and manifest["schema_version"] == 3
    assert manifest["failures"] == []


def test_rerun_does_no_yamnet_work(synthetic_corpus, native_engine, tmp_path, monkeypatch):
    sources = openslr83_clips(synthetic_corpus)
    run(sources, native_engine, tmp_path, shard_frames=40)
    shards_before = complete_shards(tmp_path)

    calls = count_infer_calls(monkeypatch, native_engine)
    hashed = []
    monkeypatch.setattr(decode, "hash_file", lambda path: hashed.append(path) or "")
    report = run(sources, native_engine, tmp_path, shard_frames=40)

    assert calls == [] and hashed == []  # unchanged size and mtime: not even hashed
    assert (report.clips, report.cached) == (0, 24)
    assert complete_shards(tmp_path) == shards_before


def test_interrupted_run_resumes_without_duplicates_or_loss(
    synthetic_corpus, native_engine, tmp_path, monkeypatch
):
    sources = openslr83_clips(synthetic_corpus)
    # One batch per network call, so that the run is cut after the first clips are done.
    monkeypatch.setattr(engines, "BATCHES_PER_NETWORK_CALL", 1)
    calls = count_infer_calls(monkeypatch, native_engine, fail_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        run(sources, native_engine, tmp_path, shard_frames=20)
    kept = Cache(tmp_path).clips()
    assert 0 < len(kept) < 24 and kept["num_frames"].sum() >= 20  # whole shards only
    assert not [path for path in tmp_path.iterdir() if atomic.is_temporary(path)]
    # What a SIGKILL during a shard write leaves behind must not count either.
    orphan = atomic.temporary_path(tmp_path / "shard-00099.h5")
    orphan.write_bytes(b"half a shard")

    monkeypatch.undo()
    calls = count_infer_calls(monkeypatch, native_engine)
    report = run(sources, native_engine, tmp_path, shard_frames=20)

    clips = Cache(tmp_path).clips()
    assert not orphan.exists()  # the next writer, holding the lock, removed it
    # YAMNet ran on the patches of the clips that were not kept, and on nothing else.
    assert sum(calls) == int(clips["num_frames"].sum()) - int(kept["num_frames"].sum())
    assert report.cached == len(kept)
    assert report.clips == 24 - len(kept)
    assert sorted(clips["path"]) == sorted(source.key for source in sources)
    assert len(set(clips["content_hash"])) == 24
    assert json.loads((tmp_path / MANIFEST).read_text())["totals"]["clips"] == 24


def write_bad_files(folder: Path, good_wav: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("these are not samples")
    whole = good_wav.read_bytes()
    (folder / "truncated.wav").write_bytes(whole[: len(whole) // 2])
    sf.write(folder / "nan.wav", np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")
    return {"empty.wav": "empty", "notes.wav": "not readable", "truncated.wav": "truncated",
            "nan.wav": "NaN"}


def test_bad_files_are_recorded_and_skipped(synthetic_corpus, native_engine, tmp_path):
    good = sorted(synthetic_corpus.rglob("*.wav"))[:3]
    folder = tmp_path / "audio"
    for wav in good:
        shutil.copy(wav, folder / wav.name) if folder.exists() else (
            folder.mkdir(), shutil.copy(wav, folder / wav.name))
    expected = write_bad_files(folder, good[0])

    report = run(folder_clips(folder), native_engine, tmp_path / "cache")

    assert report.clips == 3
    failures = json.loads((tmp_path / "cache" / MANIFEST).read_text())["failures"]
    assert len(failures) == len(expected)
    for failure in failures:
        name = Path(failure["path"]).name
        assert expected[name] in failure["reason"] and name in failure["reason"]
        assert "\n" not in failure["reason"]


def test_refuses_embeddings_of_another_yamnet(synthetic_corpus, native_engine, tmp_path,
                                              monkeypatch):
    sources = openslr83_clips(synthetic_corpus)[:2]
    run(sources, native_engine, tmp_path)
    monkeypatch.setattr(native_engine, "fingerprint", "0123456789abcdef")
    with pytest.raises(CacheError, match=r"0123456789ab, fp32\); refusing to mix two producers"):
        run(sources, native_engine, tmp_path)


def test_csv_manifest_with_any_labels(synthetic_corpus, native_engine, tmp_path):
    wavs = sorted(synthetic_corpus.rglob("*.wav"))[:4]
    rows = ["path,label,speaker,room"] + [
        f"{wav.relative_to(synthetic_corpus)},{'cat' if i < 2 else 'dog'},s{i // 2},r{i}"
        for i, wav in enumerate(wavs)
    ]
    (synthetic_corpus / "pets.csv").write_text("\n".join(rows) + "\n")
    try:
        run(manifest_clips(synthetic_corpus / "pets.csv"), native_engine, tmp_path)
    finally:
        (synthetic_corpus / "pets.csv").unlink()
    clips = Cache(tmp_path).clips()
    assert sorted(clips["label"]) == ["cat", "cat", "dog", "dog"]
    assert sorted(clips["room"]) == ["r0", "r1", "r2", "r3"]
    assert set(json.loads((tmp_path / MANIFEST).read_text())["speakers"]) == {"s0", "s1"}


def test_native_cache_matches_the_hub_even_on_pure_tones(synthetic_corpus, native_engine,
                                                          yamnet_handle, tmp_path):
    """The cache's front end is the engine's: on tones the Hub's empty bands hold its own
    float32 FFT rounding noise, which only the same STFT reproduces."""
    from brogue.extract.yamnet.engines import HubEngine

    folder = tmp_path / "audio"
    folder.mkdir()
    for wav in sorted(synthetic_corpus.rglob("*.wav"))[:2]:
        shutil.copy(wav, folder / wav.name)
    t = np.arange(3 * 48000) / 48000
    sf.write(folder / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 48000)
    sf.write(folder / "chirp.wav", 0.5 * np.sin(2 * np.pi * (100 * t + 1000 * t**2)), 48000)
    sources = folder_clips(folder)

    run(sources, HubEngine(yamnet_handle), tmp_path / "hub")
    run(sources, native_engine, tmp_path / "native")

    hub, native = Cache(tmp_path / "hub"), Cache(tmp_path / "native")
    assert hub.encoder.fingerprint == native.encoder.fingerprint
    np.testing.assert_array_equal(hub.clips()["num_frames"], native.clips()["num_frames"])
    for row in range(len(sources)):
        for name in ("embeddings", "scores"):
            np.testing.assert_allclose(hub.clip_frames(0, row, (name,))[name],
                                       native.clip_frames(0, row, (name,))[name], atol=1e-4)


def test_cli_downloads_resumes_and_extracts(synthetic_corpus, file_server, brogue_cache,
                                            yamnet_handle, tmp_path, monkeypatch, capsys):
    for subset in sorted(path for path in synthetic_corpus.iterdir() if path.is_dir())[:2]:
        with zipfile.ZipFile(file_server.root / f"{subset.name}.zip", "w") as archive:
            for wav in sorted(subset.glob("*.wav")):
                archive.write(wav, f"{subset.name}/{wav.name}")
    index = (synthetic_corpus / "line_index_all.csv").read_text()
    (file_server.root / "line_index_all.csv").write_text(index)
    monkeypatch.setenv("BROGUE_OPENSLR_URL", file_server.url)
    monkeypatch.setenv("BROGUE_CACHE", str(brogue_cache))
    subsets = ",".join(sorted(path.stem for path in file_server.root.glob("*.zip")))
    argv = ["extract", "--corpus", "openslr83", "--subsets", subsets, "--download-dir",
            str(tmp_path / "corpus"), "--out", str(tmp_path / "cache"), "--yamnet", yamnet_handle,
            "--workers", "0"]

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "line_index_all.csv").write_text(index)  # so the cut hits a zip
    file_server.faults.cut_after = 5000
    assert main(argv) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and ".zip" in error and "received 5000 of" in error

    assert main(argv) == 0
    assert any(seen.range and seen.range.startswith("bytes=5000-")
               for seen in file_server.requests)
    served = sum(len(zipfile.ZipFile(z).namelist()) for z in file_server.root.glob("*.zip"))
    assert f"extracted {served} clips" in capsys.readouterr().out
    assert len(Cache(tmp_path / "cache").clips()) == served


def test_decoding_keeps_a_bounded_number_of_clips_in_flight(synthetic_corpus):
    class CountingList(list):
        taken = 0

        def __iter__(self):
            for item in super().__iter__():
                CountingList.taken += 1
                yield item

    sources = CountingList(openslr83_clips(synthetic_corpus))
    lead = []
    for done, _ in enumerate(prepared_in_order(sources, PARAMS.grid, 1, {}), start=1):
        lead.append(CountingList.taken - done)
    assert max(lead) <= TASKS_PER_WORKER
    assert len(lead) == len(sources)


def test_identical_files_at_two_paths_are_two_clips(synthetic_corpus, native_engine, tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    wav = sorted(synthetic_corpus.rglob("*.wav"))[0]
    shutil.copy(wav, folder / "take1.wav")
    shutil.copy(wav, folder / "take2.wav")

    first = run(folder_clips(folder), native_engine, tmp_path / "cache")
    again = run(folder_clips(folder), native_engine, tmp_path / "cache")

    assert (first.clips, again.clips, again.cached) == (2, 0, 2)
    assert sorted(Path(p).name for p in Cache(tmp_path / "cache").clips()["path"]) == [
        "take1.wav", "take2.wav"]


@pytest.mark.parametrize("problem", ["yamnet", "unwritable", "no audio"])
def test_fatal_problems_exit_non_zero_with_one_line(problem, synthetic_corpus, yamnet_handle,
                                                    brogue_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BROGUE_CACHE", str(brogue_cache))
    corpus, out, handle = str(synthetic_corpus), tmp_path / "cache", yamnet_handle
    if problem == "yamnet":
        handle = str(tmp_path / "no-such-model")
        expected = "cannot load YAMNet"
    elif problem == "unwritable":
        out.write_text("a file, not a folder")
        expected = "not writable"
    else:
        (tmp_path / "empty").mkdir()
        corpus, expected = str(tmp_path / "empty"), "has no audio"

    code = main(["extract", "--corpus", corpus, "--out", str(out), "--yamnet", handle,
                 "--workers", "0", "--limit", "2"])

    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert lines[-1].startswith("error: ") and expected in lines[-1]


def test_a_decode_worker_runs_numpy_with_one_blas_thread():
    """Decoding does no linear algebra: OpenBLAS's thread per core only cost start-up CPU."""
    import threadpoolctl  # scikit-learn's dependency

    pool = decode._start_pool(1)
    try:
        pool.submit(decode.blocks, 16000, PARAMS.grid).result()  # it now holds decode, numpy
        libraries = pool.submit(threadpoolctl.threadpool_info).result()
    finally:
        pool.shutdown()

    assert [library["num_threads"] for library in libraries
            if library["user_api"] == "blas"] == [1]  # fmt: skip


class KillsItsWorker:
    """A path that ends the worker process the moment the worker unpickles it, as a codec
    crash would."""

    def __reduce__(self):
        return (os._exit, (70,))

    def __str__(self) -> str:
        return "crash.wav"


def test_a_worker_crash_fails_one_clip_and_the_run_goes_on(synthetic_corpus):
    good = openslr83_clips(synthetic_corpus)[:3]
    crasher = ClipSource(KillsItsWorker(), "", "", {}, "crash.wav")
    sources = [*good[:2], crasher, *good[2:]]

    prepared = list(prepared_in_order(sources, PARAMS.grid, 1, {}))

    assert [clip.source for clip in prepared] == sources
    assert prepared[2].failure == "crash.wav: the decoder crashed reading it"
    assert all(clip.waveform is not None for i, clip in enumerate(prepared) if i != 2)
