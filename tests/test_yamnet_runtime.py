"""YAMNet's runtimes and precisions: the same network in Keras and OpenVINO, bf16 against fp32,
the converted model's cache, and the cache's refusal to mix precisions.

fp32 parity with the Hub for every runtime is in test_yamnet_parity.py. The bf16 checks run
where the CPU computes in bf16 (AMX or AVX512-BF16) and are skipped with a reason elsewhere.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
from test_yamnet_parity import BATCH_CLIPS, make_clip, write_random_weights

from brogue import atomic
from brogue.cache import CacheError
from brogue.cache.reader import cached_files
from brogue.extract import pipeline, runtime
from brogue.extract.corpus import openslr83_clips
from brogue.extract.engine import encoder_record
from brogue.extract.runtime import KERAS_RUNTIMES
from brogue.extract.weights_store import ImportedWeights
from brogue.extract.yamnet import runtime as yamnet_runtime
from brogue.extract.yamnet.engines import NativeEngine, PatchBatcher, front_end_groups
from brogue.extract.yamnet.params import PARAMS
from brogue.inference.predict import predict
from brogue.inference.trained_run import load_run
from dev.signals import speech_like

needs_bf16 = pytest.mark.skipif(
    not runtime.cpu_has_bf16(), reason="this CPU has neither AMX nor AVX512-BF16"
)


def test_patch_batcher_sends_full_batches_across_clips():
    sizes = []

    def infer(patches):
        sizes.append(len(patches))
        total = patches.sum(axis=(1, 2))
        return np.repeat(total[:, None], 521, 1), np.repeat(total[:, None], 1024, 1)

    batcher = PatchBatcher(infer, batch_size=8)
    counts = (3, 7, 1, 12)
    done = [
        result
        for n in counts
        for result in batcher.add(f"clip{n}", np.full((n, 96, 64), n, np.float32))
    ] + batcher.flush()

    assert sizes == [8, 8, 7]
    assert [owner for owner, _, _ in done] == [f"clip{n}" for n in counts]
    for (_, scores, embeddings), n in zip(done, counts, strict=True):
        assert scores.shape == (n, 521) and embeddings.shape == (n, 1024)
        assert np.all(embeddings == n * 96 * 64)  # each clip got its own patches back


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> ImportedWeights:
    return write_random_weights(tmp_path_factory.mktemp("random-runtime"), 5)


def test_front_end_calls_are_bounded_in_clips_and_in_audio():
    second = 16000
    lengths = [2 * second] * 20 + [100 * second] + [40 * second] * 3
    clips = [(index, np.zeros(n, np.float32)) for index, n in enumerate(lengths)]

    groups = [[key for key, _ in group] for group in front_end_groups(clips)]

    # 16 clips of 2 s; 4 more (8 s) stop before the 100 s clip, which goes alone (it is longer
    # than a call's 96 s by itself); then 40 s clips two at a time (three would be 120 s).
    assert groups == [list(range(16)), [16, 17, 18, 19], [20], [21, 22], [23]]


def test_stream_keeps_every_clip_with_its_key_over_many_front_end_calls(
    random_weights: ImportedWeights,
):
    """Many groups of clips through the front end while the network thread works behind."""
    rng = np.random.default_rng(8)
    clips = [rng.uniform(-1, 1, n).astype(np.float32) for n in rng.integers(1, 40000, 40)]
    engine = NativeEngine.from_imported(random_weights, runtime="openvino", batch_size=7)

    streamed = list(engine.stream((f"clip{i}", clip) for i, clip in enumerate(clips)))

    assert [key for key, _ in streamed] == [f"clip{i}" for i in range(len(clips))]
    for clip, (_, frames) in zip(clips, streamed, strict=True):
        (alone,) = engine.frames([clip])
        np.testing.assert_allclose(frames.embeddings, alone.embeddings, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(frames.log_mel, alone.log_mel)


def test_a_network_failure_surfaces_from_the_stream(random_weights: ImportedWeights):
    engine = NativeEngine.from_imported(random_weights, runtime="openvino", batch_size=7)
    calls = []

    def failing(patches):
        calls.append(len(patches))
        if len(calls) == 3:
            raise RuntimeError("the network failed")
        return engine.network(patches)

    engine.infer = failing
    clips = [make_clip(name) for name in BATCH_CLIPS] * 4  # 100 patches, 28 per network call

    with pytest.raises(RuntimeError, match="the network failed"):
        list(engine.stream(enumerate(clips)))


def test_openvino_computes_the_keras_network(random_weights: ImportedWeights):
    clips = [make_clip(name) for name in BATCH_CLIPS]
    engines = {name: NativeEngine.from_imported(random_weights, runtime=name, batch_size=7)
               for name in ("keras", "openvino")}  # fmt: skip
    keras_frames, openvino_frames = (engine.frames(clips) for engine in engines.values())

    assert engines["openvino"].runtime == "openvino" and engines["keras"].runtime == "keras"
    for ours, theirs in zip(openvino_frames, keras_frames, strict=True):
        assert ours.scores.shape == theirs.scores.shape
        np.testing.assert_allclose(ours.embeddings, theirs.embeddings, rtol=0, atol=1e-5)
        np.testing.assert_allclose(ours.scores, theirs.scores, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(ours.log_mel, theirs.log_mel)  # one front end


def test_the_converted_model_is_cached_by_fingerprint_and_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from importlib.metadata import version

    weights = write_random_weights(tmp_path, 6)
    NativeEngine.from_imported(weights, runtime="openvino")
    stem = f"{weights.fingerprint}.openvino-{version('openvino')}"
    assert (tmp_path / f"{stem}.xml").is_file() and (tmp_path / f"{stem}.bin").is_file()
    assert not [path for path in tmp_path.iterdir() if atomic.is_temporary(path)]  # no leftovers

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(keras.Model, "export", no_conversion)
    clip = make_clip("speech_0.5s")
    again = NativeEngine.from_imported(weights, runtime="openvino").frames([clip])
    assert again[0].embeddings.shape == (1, PARAMS.embedding_size)


def test_auto_is_openvino_on_a_cpu():
    assert runtime.resolve("auto", "fp32", KERAS_RUNTIMES) == "openvino"


def test_bf16_is_refused_in_one_line_where_it_cannot_run(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(runtime.RuntimeUnavailable, match="openvino runtime only, not keras"):
        runtime.resolve("keras", "bf16", KERAS_RUNTIMES)
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)
    with pytest.raises(runtime.RuntimeUnavailable) as caught:
        runtime.resolve("auto", "bf16", KERAS_RUNTIMES)
    message = str(caught.value)
    assert "AMX or AVX512-BF16" in message and "--precision fp32" in message
    assert "\n" not in message


def test_extract_refuses_to_mix_precisions(synthetic_corpus, native_engine, tmp_path,
                                           monkeypatch: pytest.MonkeyPatch):
    sources = openslr83_clips(synthetic_corpus)[:2]
    pipeline.run(sources, native_engine, tmp_path, workers=0, progress=False)
    monkeypatch.setattr(native_engine, "precision", "bf16")
    with pytest.raises(CacheError, match="holds fp32 embeddings, not bf16"):
        pipeline.run(sources, native_engine, tmp_path, workers=0, progress=False)

    # The shards themselves say so too, for a manifest that lost its precision.
    record = encoder_record(native_engine)
    with pytest.raises(CacheError, match="precision 'fp32' instead of 'bf16'"):
        cached_files(tmp_path, dataclasses.replace(record, runtime="openvino", precision="bf16"))
    fp32_keras = dataclasses.replace(record, runtime="keras", precision="fp32")
    assert len(cached_files(tmp_path, fp32_keras)) == 2  # another fp32 runtime may resume it


# --- bf16 against fp32, where the CPU has it ---


@pytest.fixture(scope="module")
def bf16_engine(real_yamnet_handle: str) -> NativeEngine:
    """On the real weights only: how closely bf16 follows fp32 is their conditioning. The
    random-weights YAMNet amplifies rounding far more (bf16 embeddings at cosine 0.98)."""
    return NativeEngine(real_yamnet_handle, precision="bf16")


def _speech_clips() -> list[np.ndarray]:
    rng = np.random.default_rng(10)
    return [speech_like(seconds, rng) for seconds in rng.uniform(2.0, 9.0, 40)]


@needs_bf16
def test_bf16_embeddings_follow_fp32_on_speech(native_engine, bf16_engine):
    clips = _speech_clips()
    fp32, bf16 = native_engine.frames(clips), bf16_engine.frames(clips)
    a = np.concatenate([f.embeddings for f in fp32])
    b = np.concatenate([f.embeddings for f in bf16])
    cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    top_fp32 = np.concatenate([f.scores.argmax(axis=1) for f in fp32])
    top_bf16 = np.concatenate([f.scores.argmax(axis=1) for f in bf16])

    assert bf16_engine.precision == "bf16" and len(a) > 300
    assert cosine.mean() >= 0.999 and cosine.min() >= 0.995
    assert (top_fp32 == top_bf16).mean() >= 0.99
    assert np.abs(a - b).max() > 0  # bf16 did run: the engines differ


@needs_bf16
def test_a_head_trained_on_fp32_gives_the_same_accents_from_bf16(
    speech_run: Path, synthetic_corpus: Path, native_engine, bf16_engine
):
    run = load_run(speech_run)
    assert run.encoder.precision == "fp32"
    files = sorted(synthetic_corpus.glob("*/*.wav"))
    fp32 = [p.accent for p in predict(run, [native_engine], files)]
    as_bf16 = dataclasses.replace(
        run, encoders=[dataclasses.replace(run.encoder, precision="bf16")])
    bf16 = [p.accent for p in predict(as_bf16, [bf16_engine], files)]

    assert len(fp32) == len(bf16) == len(files)
    assert np.mean(np.array(fp32) == np.array(bf16)) >= 0.98


# --- the Keras runtime under jax, with no TensorFlow at run time ---

JAX_RUN = """
import sys
sys.modules["tensorflow"] = None  # importing TensorFlow now fails: none may be needed
import numpy as np
from brogue.extract.yamnet.engines import NativeEngine
engine = NativeEngine(sys.argv[1], runtime="keras")
clips = np.load(sys.argv[2])
frames = engine.frames([clips[name] for name in sorted(clips)])
np.save(sys.argv[3], np.concatenate([f.embeddings for f in frames]))
"""


def test_keras_runtime_runs_under_jax_without_tensorflow(real_yamnet_handle, native_engine,
                                                          tmp_path):
    """Once the weights are imported (the native_engine fixture did it), jax alone suffices.

    On the real weights only: the 1e-4 between jax's and TensorFlow's float32 is their
    conditioning; the random-weights YAMNet amplifies the same rounding to 4e-4."""
    import os
    import subprocess
    import sys

    pytest.importorskip("jax", reason="needs jax: pip install 'brogue[jax]'")
    clips = {name: make_clip(name) for name in ("speech_hop5", "speech_0.5s", "loud_7s")}
    np.savez(tmp_path / "clips.npz", **clips)
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", JAX_RUN, real_yamnet_handle, str(tmp_path / "clips.npz"),
                    str(tmp_path / "jax.npy")], env=environment, check=True, timeout=300)

    expected = native_engine.frames([clips[name] for name in sorted(clips)])
    np.testing.assert_allclose(np.load(tmp_path / "jax.npy"),
                               np.concatenate([f.embeddings for f in expected]), atol=1e-4)


OPENVINO_EXTRACT = """
import sys
from brogue.main import main
code = main(["extract", "--corpus", sys.argv[1], "--out", sys.argv[2], "--yamnet", sys.argv[3],
             "--runtime", "openvino", "--workers", "0"])
loaded = sorted(name for name in ("tensorflow", "keras") if name in sys.modules)
print("loaded:", ",".join(loaded) or "none")
sys.exit(code)
"""


def test_openvino_extraction_imports_no_tensorflow(yamnet_handle, native_engine,
                                                   synthetic_corpus, tmp_path):
    """Once the weights are imported and converted, extraction on openvino runs without
    TensorFlow or Keras: the front end is numpy's, the network OpenVINO's."""
    import subprocess
    import sys

    # what a first run leaves in the cache
    yamnet_runtime.converted(native_engine._imported, PARAMS)
    done = subprocess.run([sys.executable, "-c", OPENVINO_EXTRACT, str(synthetic_corpus),
                           str(tmp_path / "cache"), yamnet_handle],
                          capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr
    assert "loaded: none" in done.stdout
    assert "extracted 24 clips" in done.stdout + done.stderr
