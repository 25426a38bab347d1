"""A cache that is safe to share, move and resume: atomic publishing, the writer lock, clip
identity, exit codes and `brogue verify`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf

from brogue import atomic
from brogue.cache import (
    Cache,
    ClipMeta,
    EncoderRecord,
    ShardWriter,
    complete_shards,
    hash_file,
    lock,
)
from brogue.cache.manifest import summarise, write_manifest
from brogue.extract import decode, pipeline
from brogue.extract.corpus import folder_clips
from brogue.main import main

# --- atomic publishing ---


def test_temporary_names_are_unique_and_recognised(tmp_path: Path):
    final = tmp_path / "shard-00001.h5"
    names = {atomic.temporary_path(final) for _ in range(100)}
    assert len(names) == 100
    assert all(atomic.is_temporary(name) and name.suffix == ".h5" for name in names)
    assert not atomic.is_temporary(final)
    assert not atomic.is_temporary(tmp_path / "notes.tmp.txt")


def test_publish_without_overwrite_refuses_a_taken_name(tmp_path: Path):
    final = tmp_path / "shard.h5"
    final.write_text("finished")
    with pytest.raises(FileExistsError), atomic.atomic_path(final, overwrite=False) as temporary:
        temporary.write_text("a second writer's shard")
    assert final.read_text() == "finished"
    assert [path.name for path in tmp_path.iterdir()] == ["shard.h5"]  # no temporary left


def test_write_text_replaces_atomically_and_an_error_keeps_the_old_file(tmp_path: Path):
    final = tmp_path / "manifest.json"
    atomic.write_text(final, "one")
    atomic.write_text(final, "two")
    assert final.read_text() == "two"
    with pytest.raises(RuntimeError), atomic.atomic_path(final) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed mid-write")
    assert final.read_text() == "two" and [p.name for p in tmp_path.iterdir()] == [final.name]


# --- one writer per cache ---

HOLD = """
import sys, time
from brogue.cache.lock import writer_lock
with writer_lock(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(60)
"""


def hold_lock(folder: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path: Path, capsys):
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(lock.CacheBusyError) as refused:
            pipeline.run([], None, tmp_path, progress=False)  # refused before any work
        message = str(refused.value)
        assert "\n" not in message and str(tmp_path) in message
        assert f"host {socket.gethostname()}, pid {holder.pid}, started 20" in message
        code = main(["extract", "--corpus", str(tmp_path), "--out", str(tmp_path),
                     "--yamnet", str(tmp_path / "never-loaded")])  # fmt: skip
        assert code == 1
        assert capsys.readouterr().err.strip().startswith(f"error: {tmp_path} is being written")
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_writer_does_not_block(tmp_path: Path):
    holder = hold_lock(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (tmp_path / lock.LOCK).exists() and not lock.is_locked(tmp_path)
    with lock.writer_lock(tmp_path):
        assert lock.is_locked(tmp_path)
        assert f"pid {os.getpid()}" in lock.holder(tmp_path)


# --- clip identity: a moved corpus, an edited file ---


def copy_clips(synthetic_corpus: Path, folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    wavs = sorted(synthetic_corpus.rglob("*.wav"))[:count]
    return [Path(shutil.copy2(wav, folder / wav.name)) for wav in wavs]


def count_work(monkeypatch: pytest.MonkeyPatch, engine) -> tuple[list, list]:
    hashed, inferred = [], []
    hash_file, infer = decode.hash_file, type(engine).infer.__get__(engine)
    monkeypatch.setattr(decode, "hash_file", lambda path: hashed.append(path) or hash_file(path))
    monkeypatch.setattr(engine, "infer", lambda patches: inferred.append(1) or infer(patches))
    return hashed, inferred


def extract(folder: Path, engine, out: Path) -> pipeline.RunReport:
    return pipeline.run(folder_clips(folder), engine, out, workers=0, progress=False)


def test_a_moved_or_symlinked_corpus_is_not_extracted_again(synthetic_corpus, native_engine,
                                                             tmp_path, monkeypatch):
    copy_clips(synthetic_corpus, tmp_path / "corpus", 3)
    extract(tmp_path / "corpus", native_engine, tmp_path / "cache")
    (tmp_path / "corpus").rename(tmp_path / "moved")
    (tmp_path / "link").symlink_to(tmp_path / "moved")
    hashed, inferred = count_work(monkeypatch, native_engine)

    for corpus in (tmp_path / "moved", tmp_path / "link"):
        report = extract(corpus, native_engine, tmp_path / "cache")
        assert (report.clips, report.cached, report.failures) == (0, 3, [])
    assert hashed == [] and inferred == []  # size and mtime unchanged: not even hashed

    os.utime(tmp_path / "moved" / sorted(os.listdir(tmp_path / "moved"))[0])  # touched only
    report = extract(tmp_path / "moved", native_engine, tmp_path / "cache")
    assert (report.clips, report.cached, len(hashed), inferred) == (0, 3, 1, [])


def test_an_edited_file_replaces_its_old_row(synthetic_corpus, native_engine, tmp_path):
    first, second = copy_clips(synthetic_corpus, tmp_path / "corpus", 2)
    extract(tmp_path / "corpus", native_engine, tmp_path / "cache")
    old = dict(zip(*(Cache(tmp_path / "cache").clips()[c] for c in ("path", "content_hash")),
                   strict=True))  # fmt: skip
    samples, rate = sf.read(first)
    sf.write(first, samples[: len(samples) // 2], rate)  # edited: cut in half

    report = extract(tmp_path / "corpus", native_engine, tmp_path / "cache")

    assert (report.clips, report.cached) == (1, 1)
    cache = Cache(tmp_path / "cache")
    clips = cache.clips()
    assert sorted(clips["path"]) == [first.name, second.name]
    edited = clips.select(clips["path"] == first.name)
    assert edited["content_hash"][0] == hash_file(first) != old[first.name]
    assert edited["shard"][0] == 1
    assert cache.manifest["totals"]["clips"] == 2
    assert cache.manifest["totals"]["frames"] == int(clips["num_frames"].sum())
    assert main(["verify", str(tmp_path / "cache")]) == 0  # a stale row is not a problem


# --- exit codes ---


def test_extract_exit_codes(synthetic_corpus, yamnet_handle, brogue_cache, tmp_path,
                            monkeypatch, capsys):
    monkeypatch.setenv("BROGUE_CACHE", str(brogue_cache))
    copy_clips(synthetic_corpus, tmp_path / "corpus", 2)
    (tmp_path / "corpus" / "broken.wav").write_text("not audio")
    argv = ["extract", "--corpus", str(tmp_path / "corpus"), "--out", str(tmp_path / "cache"),
            "--yamnet", yamnet_handle, "--workers", "0"]  # fmt: skip

    assert main(argv) == 3  # finished, one clip failed
    out = capsys.readouterr().out
    assert "failed 1 clips:" in out and f"{tmp_path / 'corpus' / 'broken.wav'}: not" in out
    (tmp_path / "corpus" / "broken.wav").unlink()
    assert main(argv) == 0  # every clip is cached
    with pytest.raises(SystemExit) as usage:
        main([*argv, "--shard-frames", "0"])
    assert usage.value.code == 2


# --- brogue verify ---

ENCODER = EncoderRecord("test-encoder", "test://weights", "fingerprint-a", {}, "keras", "fp32",
                        0.96, 0.48, 16)  # fmt: skip


def write_cache(directory: Path, shard_paths: list[list[str]]) -> Path:
    rng = np.random.default_rng(0)
    for index, paths in enumerate(shard_paths):
        with ShardWriter(directory, index, ENCODER, "0.1.0") as writer:
            for path in paths:
                frames = int(rng.integers(1, 6))
                meta = ClipMeta(path, "irish", "s1", 0.48 * frames, f"hash of {path}")
                writer.add_clip(meta, rng.random((frames, 16), np.float32),
                                rng.random(frames) < 0.5)  # fmt: skip
    write_manifest(directory, summarise(directory) | {"failures": []}, ENCODER)
    return directory


def verify(directory: Path, capsys, *flags: str) -> tuple[int, list[str], str]:
    code = main(["verify", str(directory), *flags])
    out, err = capsys.readouterr()
    return code, [line.strip() for line in err.strip().splitlines()], out.strip()


def test_verify_passes_a_sound_cache(tmp_path: Path, capsys):
    write_cache(tmp_path, [["a.wav", "b.wav"], ["c.wav"]])
    code, problems, verdict = verify(tmp_path, capsys)
    assert (code, problems) == (0, [])
    assert verdict.startswith(f"ok: {tmp_path}: 2 shards, 3 clips, ") and "\n" not in verdict


def test_verify_finds_and_repairs_orphans_and_a_wrong_manifest(tmp_path: Path, capsys):
    write_cache(tmp_path, [["a.wav", "b.wav"], ["c.wav"]])
    orphan = atomic.temporary_path(tmp_path / "shard-00002.h5")
    orphan.write_bytes(b"half a shard")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["totals"]["clips"] = 280
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    shards_before = {path: path.read_bytes() for path in complete_shards(tmp_path)}

    code, problems, verdict = verify(tmp_path, capsys)
    assert code == 3 and verdict.startswith(f"2 problem(s) in {tmp_path}")
    assert any(orphan.name in line and "orphan" in line for line in problems)
    assert any("totals differ from the shards" in line for line in problems)

    code, problems, verdict = verify(tmp_path, capsys, "--repair")
    assert (code, problems) == (0, [])
    assert "removed 1 orphan temporaries" in verdict and "rebuilt manifest.json" in verdict
    assert not orphan.exists()
    assert json.loads((tmp_path / "manifest.json").read_text())["totals"]["clips"] == 3
    assert {path: path.read_bytes() for path in complete_shards(tmp_path)} == shards_before


def test_verify_reports_duplicates_and_broken_shards_and_repair_keeps_them(tmp_path, capsys):
    write_cache(tmp_path, [["a.wav", "b.wav"], ["a.wav"], ["c.wav"], ["d.wav"]])
    with h5py.File(tmp_path / "shard-00002.h5", "r+") as file:
        file["clips/frame_start"][0] = 3
    whole = (tmp_path / "shard-00003.h5").read_bytes()
    (tmp_path / "shard-00003.h5").write_bytes(whole[: len(whole) // 2])

    code, problems, _ = verify(tmp_path, capsys, "--repair")

    assert code == 3
    assert "a.wav (content hash of a.wa) is stored 2 times" in problems
    assert "shard-00002.h5: frame_start does not follow num_frames" in problems
    assert any(line.startswith("shard-00003.h5 does not open") for line in problems)
    assert len(problems) == 3  # the rebuilt manifest lists the shards that open
    assert len(complete_shards(tmp_path)) == 4  # finished shards are never deleted


def test_verify_repair_waits_for_no_writer(tmp_path: Path, capsys):
    write_cache(tmp_path, [["a.wav"]])
    holder = hold_lock(tmp_path)
    try:
        in_progress = atomic.temporary_path(tmp_path / "shard-00001.h5")
        in_progress.write_bytes(b"the running writer's spool")
        code, problems, verdict = verify(tmp_path, capsys)
        assert (code, problems) == (0, [])  # a running writer's temporaries are not orphans
        assert verify(tmp_path, capsys, "--repair")[0] == 1
        assert in_progress.exists()
    finally:
        holder.kill()
        holder.wait()
