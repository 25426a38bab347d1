"""The model families: their pooling layers, clip-linear's carried weights, and every family
through fit, evaluate, predict and export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from brogue.inference.pooling import StatsPooling, pool_weights
from brogue.main import main
from brogue.train.clip_linear import carried_model
from brogue.train.metrics import pool


def _clips(rng: np.random.Generator, count: int, longest: int):
    """Padded random clips: frames [B, T, 1024], speech and present masks [B, T]."""
    lengths = rng.integers(1, longest + 1, count)
    present = (np.arange(longest)[None, :] < lengths[:, None]).astype(np.float32)
    speech = (rng.random((count, longest)) < 0.6).astype(np.float32) * present
    speech[0] = 0.0  # one clip without speech: it pools over all its frames
    frames = rng.normal(0, 1, (count, longest, 1024)).astype(np.float32) * present[..., None]
    return frames, speech, present


def test_pooling_layers_follow_the_speech_rule_and_the_statistics() -> None:
    rng = np.random.default_rng(0)
    frames, speech, present = _clips(rng, 6, 9)
    weights = np.asarray(pool_weights(speech, present))
    statistics = np.asarray(StatsPooling()(frames, weights))
    for clip in range(6):
        n = int(present[clip].sum())
        chosen = speech[clip, :n] == 1 if speech[clip].any() else np.ones(n, bool)
        np.testing.assert_array_equal(weights[clip, :n] == 1, chosen)
        assert not weights[clip, n:].any()
        rows = frames[clip, :n][chosen].astype(np.float64)
        np.testing.assert_allclose(statistics[clip, :1024], rows.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(statistics[clip, 1024:], np.sqrt(rows.var(axis=0) + 1e-6),
                                   atol=1e-4)  # fmt: skip
    # The frame-level rule of evaluate and predict, on frame probabilities, agrees.
    probs = rng.random((6 * 9, 3))
    real = present.ravel() == 1
    owners = np.repeat(np.arange(6), 9)[real]
    means, _ = pool(probs[real], owners, speech.ravel()[real] == 1, 6)
    by_weights = (probs.reshape(6, 9, 3) * weights[..., None]).sum(1) / weights.sum(1)[:, None]
    np.testing.assert_allclose(means, by_weights, atol=1e-6)


@pytest.mark.parametrize("accents", [2, 4])
def test_clip_linear_serves_what_scikit_learn_fitted(accents: int) -> None:
    rng = np.random.default_rng(accents)
    frames, speech, present = _clips(rng, 80, 7)
    labels = np.arange(80) % accents
    frames += labels[:, None, None] * 0.3 * present[..., None]
    features = np.asarray(StatsPooling()(frames, pool_weights(speech, present)))
    scaler = StandardScaler().fit(features)
    regression = LogisticRegression(C=0.5, max_iter=500).fit(scaler.transform(features), labels)
    served = carried_model(scaler, regression, accents, [frames.shape[-1]]).predict(
        [frames, speech, present], verbose=0)  # fmt: skip
    expected = regression.predict_proba(scaler.transform(features))
    np.testing.assert_allclose(served, expected, atol=1e-5)


@pytest.fixture(scope="module", params=["clip-linear", "clip-attention"])
def family_run(request, speech_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of each clip-level family on the espeak-ng speech cache of `speech_run`."""
    run = tmp_path_factory.mktemp(request.param) / "run"
    flags = ["--model", request.param, "--split", "random", "--epochs", "15", "--batch-size", "8",
             "--no-tensorboard"]  # fmt: skip
    cache = speech_run.parent / "cache"
    assert main(["fit", "--cache", str(cache), "--out", str(run), *flags]) == 0
    return run


def test_every_family_fits_evaluates_predicts_and_exports(
    family_run: Path, synthetic_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import soundfile as sf
    import tensorflow as tf

    from brogue.extract.audio import load_audio
    from brogue.inference.predict import predict
    from brogue.inference.trained_run import load_encoders, load_run
    from brogue.openslr83 import ACCENTS

    facts = json.loads((family_run / "run.json").read_text())
    metrics = json.loads((family_run / "metrics.json").read_text())
    assert metrics["model"] == facts["model"] == family_run.parent.name[:-1]
    assert metrics["valid"]["frame"] is None and metrics["valid"]["clip"]["count"] > 0
    assert set(facts["class_weight"]) == set(metrics["classes"][:-1])
    (family_run / "metrics.json").unlink()
    assert main(["evaluate", str(family_run)]) == 0
    assert json.loads((family_run / "metrics.json").read_text())["valid"] == metrics["valid"]

    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(40000, np.float32), 16000)
    files = [*sorted(synthetic_corpus.glob("*/*.wav"))[::3], silence]
    run = load_run(family_run)
    predictions = list(predict(run, load_encoders(run), files))
    right = [p.accent == ACCENTS[Path(p.path).name[:2]] for p in predictions[:-1]]
    assert sum(right) >= 0.75 * len(right)  # the random split trains on these speakers
    for p in predictions:
        assert p.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert p.probabilities[-1] == 0.0  # a clip-level model only tells accents apart

    out = tmp_path / "export"
    assert main(["export", str(family_run), str(out)]) == 0
    model = tf.saved_model.load(str(out))
    worst = 0.0
    for prediction in predictions:
        served = model.serve(tf.constant(load_audio(prediction.path)))
        for name, ours in (("probabilities", prediction.probabilities),
                           ("frame_probabilities", prediction.frame_probabilities)):  # fmt: skip
            worst = max(worst, float(np.abs(served[name].numpy() - ours).max()))
    assert worst < 1e-4


def test_a_clip_feed_pads_every_batch_to_the_sides_longest_clip(tmp_path: Path) -> None:
    from brogue.train.config import make_config
    from brogue.train.dataset import load_corpus
    from dev.synthetic_cache import SyntheticCorpus, write_synthetic_cache

    corpus = load_corpus(write_synthetic_cache(tmp_path, SyntheticCorpus(), seed=0))
    chosen = corpus.speaker == corpus.speaker[0]
    feed = corpus.clip_feed(chosen, make_config({"batch_size": 4}), 2**20, shuffle=True)
    longest = corpus.num_frames[chosen].max()
    seen = []
    for index in range(len(feed)):
        (frames, speech, present), _ = feed[index]
        # Keras's TensorFlow adapter fixes the shapes from the first batches: one shape for all.
        assert frames.shape[1:] == (longest, 1024) and present.shape[1] == longest
        seen += [int(n) for n in present.sum(axis=1)]
        assert not (speech * (1 - present)).any() and not frames[present == 0].any()
    assert sorted(seen) == sorted(corpus.num_frames[chosen].tolist())
