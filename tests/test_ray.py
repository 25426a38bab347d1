"""The Ray executor (Ray Data in local mode, 2 CPUs) writes the local executor's cache."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from brogue import atomic
from brogue.cache import MANIFEST, Cache, complete_shards, verify
from brogue.extract import decode, pipeline
from brogue.extract.corpus import openslr83_clips
from brogue.main import main

SHARD_FRAMES = 40  # several shards per actor call
CLIPS_PER_CALL = 8  # several calls per run, so a run can be cut between two


@pytest.fixture(scope="module")
def ray_local(brogue_cache):
    ray = pytest.importorskip("ray", reason="needs Ray: pip install 'brogue[ray]'")
    pytest.importorskip("ray.data", reason="needs Ray Data: pip install 'brogue[ray]'")
    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False,
             logging_level="WARNING")  # fmt: skip
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_cache(synthetic_corpus, native_engine, tmp_path_factory) -> Path:
    """The synthetic corpus extracted by the local executor: what the Ray one must equal."""
    out = tmp_path_factory.mktemp("local") / "cache"
    pipeline.run(openslr83_clips(synthetic_corpus), native_engine, out, workers=0,
                 shard_frames=SHARD_FRAMES, progress=False)  # fmt: skip
    return out


def ray_executor(yamnet_handle: str, clips_per_call: int = CLIPS_PER_CALL) -> pipeline.Executor:
    from brogue.extract.engine import EngineSpec
    from brogue.extract.ray_executor import executor

    return executor(EngineSpec("yamnet", yamnet_handle, batch_size=64), actors=1,
                    clips_per_call=clips_per_call)  # fmt: skip


def ray_run(sources, engine, out: Path, executor: pipeline.Executor) -> pipeline.RunReport:
    return pipeline.run(sources, engine, out, shard_frames=SHARD_FRAMES, progress=False,
                        executor=executor)  # fmt: skip


def assert_same_cache(found: Path, expected: Path) -> None:
    """The same clips (path, hash, labels, counts) with embeddings and scores within 1e-5."""
    with Cache(found) as ours, Cache(expected) as theirs:
        mine, reference = ours.clips(), theirs.clips()
        order_mine, order_reference = np.argsort(mine["path"]), np.argsort(reference["path"])
        for column in ("path", "content_hash", "label", "speaker", "gender", "duration",
                       "num_frames", "speech_frames", "file_size", "file_mtime_ns"):  # fmt: skip
            np.testing.assert_array_equal(mine[column][order_mine],
                                          reference[column][order_reference], err_msg=column)
        for row_mine, row_reference in zip(order_mine, order_reference, strict=True):
            columns = ("embeddings", "speech", "scores")
            a = ours.clip_frames(int(mine["shard"][row_mine]), int(mine["row"][row_mine]),
                                 columns)  # fmt: skip
            b = theirs.clip_frames(int(reference["shard"][row_reference]),
                                   int(reference["row"][row_reference]), columns)  # fmt: skip
            np.testing.assert_allclose(a["embeddings"], b["embeddings"], atol=1e-5)
            np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-5)
            np.testing.assert_array_equal(a["speech"], b["speech"])
        assert ours.encoder.fingerprint == theirs.encoder.fingerprint
    verdict = verify(found)
    assert verdict.problems == [], verdict.problems


def test_an_interrupted_ray_run_resumes_to_the_local_executors_cache(
    ray_local, synthetic_corpus, native_engine, yamnet_handle, local_cache, tmp_path
):
    sources = openslr83_clips(synthetic_corpus)
    # Calls of 2 clips: the actor is still far from the end when the first shard arrives.
    executor = ray_executor(yamnet_handle, clips_per_call=2)

    def interrupted(job: pipeline.Job):
        outcomes = executor(job)
        try:
            for outcome in outcomes:
                yield outcome
                if outcome.shard:
                    raise KeyboardInterrupt  # Ctrl-C in the driver once a shard has arrived
        finally:
            outcomes.close()

    with pytest.raises(KeyboardInterrupt):
        ray_run(sources, native_engine, tmp_path, interrupted)
    kept = Cache(tmp_path).clips()  # the manifest was written on the way out
    assert 0 < len(kept) < len(sources)
    assert not [path for path in tmp_path.iterdir() if atomic.is_temporary(path)]

    report = ray_run(sources, native_engine, tmp_path, executor)

    assert (report.cached, report.clips, report.failures) == (len(kept), 24 - len(kept), [])
    assert_same_cache(tmp_path, local_cache)
    totals = json.loads((tmp_path / MANIFEST).read_text())["totals"]
    expected = json.loads((local_cache / MANIFEST).read_text())["totals"]
    assert totals == {**expected, "seconds": pytest.approx(expected["seconds"])}


def test_a_cache_begun_locally_and_finished_on_ray_is_one_cache(
    ray_local, synthetic_corpus, native_engine, yamnet_handle, local_cache, tmp_path
):
    sources = openslr83_clips(synthetic_corpus)
    pipeline.run(sources[::2], native_engine, tmp_path, workers=0, shard_frames=SHARD_FRAMES,
                 progress=False)  # fmt: skip

    report = ray_run(sources, native_engine, tmp_path, ray_executor(yamnet_handle))

    assert (report.cached, report.clips) == (12, 12)  # by the local executor's clip identity
    assert_same_cache(tmp_path, local_cache)
    shards_before = complete_shards(tmp_path)
    again = pipeline.run(sources, native_engine, tmp_path, workers=0, progress=False)
    assert (again.cached, again.clips, complete_shards(tmp_path)) == (24, 0, shards_before)


def test_a_bad_file_is_a_failure_not_a_crash(ray_local, synthetic_corpus, yamnet_handle,
                                             tmp_path, capsys):  # fmt: skip
    folder = tmp_path / "audio"
    folder.mkdir()
    for wav in sorted(synthetic_corpus.rglob("*.wav"))[:2]:
        shutil.copy(wav, folder / wav.name)
    (folder / "notes.wav").write_text("these are not samples")
    (folder / "empty.wav").write_bytes(b"")

    code = main(["extract", "--corpus", str(folder), "--out", str(tmp_path / "cache"),
                 "--yamnet", yamnet_handle, "--executor", "ray", "--shard-frames", "40"])

    assert code == 3  # finished, some clips failed
    out = capsys.readouterr().out
    assert "extracted 2 clips" in out and "failed 2 clips" in out
    failures = json.loads((tmp_path / "cache" / MANIFEST).read_text())["failures"]
    assert sorted(Path(failure["path"]).name for failure in failures) == ["empty.wav",
                                                                          "notes.wav"]
    assert all(Path(failure["path"]).name in failure["reason"] for failure in failures)
    assert len(Cache(tmp_path / "cache").clips()) == 2
    assert verify(tmp_path / "cache").problems == []


def test_a_retried_actor_call_stores_no_clip_twice(synthetic_corpus, native_engine, tmp_path):
    """Ray retries the call of a lost actor; the shards it had published stay the only copy."""
    from brogue.cache import ShardSpec
    from brogue.extract.engine import encoder_record
    from brogue.extract.ray_executor import ShardMaker

    sources = openslr83_clips(synthetic_corpus)[:6]
    spec = ShardSpec(tmp_path, encoder_record(native_engine), tuple(native_engine.score_names),
                     "float32", ("gender", "prompt_id", "transcript"))  # fmt: skip
    make = ShardMaker(native_engine, pipeline.Output(spec, 20), frozenset())  # each actor's
    clips = [decode.prepare(source, native_engine.grid) for source in sources]

    first = make(clips)
    shards = complete_shards(tmp_path)
    second = make(clips)  # as if the first call's actor had died before returning

    assert sum(first["shard"]) == len(shards) >= 2 and first["cached"].count(True) == 0
    assert second["cached"] == [True] * 6 and not any(second["shard"])
    assert complete_shards(tmp_path) == shards
    # No clip is stored twice; the manifest is the driver's, and no driver ran here.
    assert [problem for problem in verify(tmp_path).problems if MANIFEST not in problem] == []


def test_without_ray_the_executor_says_how_to_install_it(synthetic_corpus, tmp_path,
                                                        monkeypatch, capsys):  # fmt: skip
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed

    code = main(["extract", "--corpus", str(synthetic_corpus), "--out", str(tmp_path),
                 "--executor", "ray"])  # fmt: skip

    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "error: --executor ray needs ray: pip install 'brogue[ray]'"
    )


def actor_pids() -> list[int]:
    """The processes of this test's YAMNet actors (Ray titles them after the class): those
    descending from this process, which started Ray, not another Ray on the machine."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            pid = int(cmdline.parent.name)
            if b"_ShardActor" in cmdline.read_bytes() and os.getpid() in ancestors(pid):
                pids.append(pid)
        except OSError:
            continue  # the process ended meanwhile
    return pids


def ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        # /proc/PID/stat: "pid (name) state ppid ..."; the name may hold spaces
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the actor's process in /proc")
def test_a_killed_actor_is_replaced_and_no_clip_is_lost_or_doubled(
    ray_local, synthetic_corpus, native_engine, yamnet_handle, local_cache, tmp_path
):
    sources = openslr83_clips(synthetic_corpus)
    executor = ray_executor(yamnet_handle)
    killed: list[int] = []

    def killing_the_actor(job: pipeline.Job):
        outcomes = executor(job)
        try:
            for outcome in outcomes:
                yield outcome
                if outcome.shard and not killed:  # the actor is on its next call by now
                    killed.extend(actor_pids())
                    for pid in killed:
                        os.kill(pid, signal.SIGKILL)
        finally:
            outcomes.close()

    report = ray_run(sources, native_engine, tmp_path, killing_the_actor)

    assert killed
    assert report.clips + report.cached == 24 and report.failures == []
    assert_same_cache(tmp_path, local_cache)  # verify included: no clip stored twice
