"""Fusion: clip-level families fitted on several caches of the same clips, matched by clip
identity, evaluated, predicted through every encoder, and what refuses to fuse."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from brogue.main import main
from brogue.train.clip_linear import carried_model
from dev.synthetic_cache import ENCODER, SyntheticCorpus, write_synthetic_cache

# A second producer of another width, so that the streams cannot be confused.
NARROW = dataclasses.replace(ENCODER, name="synthetic-narrow", fingerprint="narrow",
                             embedding_size=48)  # fmt: skip
CORPUS = SyntheticCorpus()
FIT = ["--split", "speaker", "--no-tensorboard"]


def _stream(rng: np.random.Generator, count: int, longest: int, width: int):
    lengths = rng.integers(1, longest + 1, count)
    present = (np.arange(longest)[None, :] < lengths[:, None]).astype(np.float32)
    speech = (rng.random((count, longest)) < 0.6).astype(np.float32) * present
    frames = rng.normal(0, 1, (count, longest, width)).astype(np.float32) * present[..., None]
    return frames, speech, present


def _statistics(frames, speech, present) -> np.ndarray:
    """Mean and std over each clip's speech frames (all its frames without one), in numpy."""
    rows = []
    for clip in range(len(frames)):
        use = speech[clip] == 1 if speech[clip].any() else present[clip] == 1
        chosen = frames[clip][use].astype(np.float64)
        rows.append(np.r_[chosen.mean(0), np.sqrt(chosen.var(0) + 1e-6)])
    return np.array(rows)


def test_a_fused_clip_linear_model_pools_each_stream_alone_and_joins_them() -> None:
    rng = np.random.default_rng(3)
    first = _stream(rng, 60, 9, 5)
    second = _stream(rng, 60, 4, 3)  # another grid: other lengths and masks for the same clips
    labels = np.arange(60) % 3
    features = np.hstack([_statistics(*first), _statistics(*second)])
    scaler = StandardScaler().fit(features)
    regression = LogisticRegression(C=0.5, max_iter=500).fit(scaler.transform(features), labels)
    model = carried_model(scaler, regression, 3, [5, 3])
    served = model.predict([*first, *second], verbose=0)
    np.testing.assert_allclose(served, regression.predict_proba(scaler.transform(features)),
                               atol=1e-5)  # fmt: skip


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The synthetic corpus by its 1024-wide producer, and by a 48-wide one that lacks every
    speaker's last clip."""
    folder = tmp_path_factory.mktemp("fusion")
    wide = write_synthetic_cache(folder / "wide", CORPUS, seed=0)
    fewer = dataclasses.replace(CORPUS, clips_per_speaker=CORPUS.clips_per_speaker - 1)
    narrow = write_synthetic_cache(folder / "narrow", fewer, seed=1, encoder=NARROW)
    return wide, narrow


@pytest.fixture(scope="module")
def fused_run(caches, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A clip-linear run on both caches, and what its fit printed."""
    run = tmp_path_factory.mktemp("fused") / "run"
    wide, narrow = caches
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # capsys serves one test, this fixture a module
        code = main(["fit", "--cache", str(wide), "--cache", str(narrow), "--out", str(run),
                     "--model", "clip-linear", *FIT])  # fmt: skip
    assert code == 0
    return run, out.getvalue()


def test_fit_matches_clips_across_caches_and_leaves_out_the_missing(caches, fused_run) -> None:
    run, printed = fused_run
    speakers = sum(CORPUS.speakers)
    clips = speakers * CORPUS.clips_per_speaker
    assert f"fusion: {speakers} of the {clips} clips of" in printed
    facts = json.loads((run / "run.json").read_text())
    assert facts["cache"]["directory"] == str(caches[0].absolute())
    assert [cache["encoder"]["name"] for cache in [facts["cache"], *facts["cache"]["fused"]]] \
        == ["synthetic", "synthetic-narrow"]  # fmt: skip
    model = keras.models.load_model(run / "model.keras")
    # The classifier reads both streams' statistics: mean and std of 1024 and of 48 dimensions.
    assert model.get_layer("accent").kernel.shape[0] == 2 * (1024 + 48)
    assert [tuple(t.shape[1:]) for t in model.inputs[::3]] == [(None, 1024), (None, 48)]
    metrics = json.loads((run / "metrics.json").read_text())
    scored = sum(metrics["split"][side]["clips"] for side in ("train", "valid", "test"))
    assert scored == clips - speakers


def test_evaluate_scores_a_fused_run_on_its_caches(caches, fused_run) -> None:
    run, _ = fused_run
    before = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").unlink()
    assert main(["evaluate", str(run)]) == 0
    after = json.loads((run / "metrics.json").read_text())
    # Scored again from both caches' frames, as the fit scored them.
    assert after["test"]["clip"] == before["test"]["clip"]
    assert after["valid"]["clip"] == before["valid"]["clip"]
    with open(run / "decisions.csv") as table:
        clips = sum(row.startswith("clip,") for row in table)
    assert clips == after["split"]["test"]["clips"] + after["split"]["valid"]["clips"] + \
        after["split"]["train"]["clips"]  # fmt: skip
    wide, narrow = caches
    assert main(["evaluate", str(run), "--cache", str(wide)]) != 0  # one cache for two streams
    assert main(["evaluate", str(run), "--cache", str(narrow), "--cache", str(wide)]) != 0


def test_clip_attention_gives_each_stream_its_own_attention(caches, tmp_path) -> None:
    run = tmp_path / "run"
    wide, narrow = caches
    assert main(["fit", "--cache", str(wide), "--cache", str(narrow), "--out", str(run),
                 "--model", "clip-attention", "--epochs", "2", *FIT]) == 0  # fmt: skip
    model = keras.models.load_model(run / "model.keras")
    assert model.get_layer("projection").kernel.shape[0] == 1024
    assert model.get_layer("projection_1").kernel.shape[0] == 48
    assert model.get_layer("attention_1") is not model.get_layer("attention")


def test_what_cannot_fuse_is_refused_in_one_line(caches, fused_run, tmp_path, capsys) -> None:
    wide, narrow = caches
    two = ["--cache", str(wide), "--cache", str(narrow)]

    def refused(argv: list[str], words: str) -> None:
        assert main(argv) != 0
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], lines

    refused(["fit", *two, "--out", str(tmp_path / "a"), "--model", "frame-dense", *FIT],
            "frame-dense cannot fuse 2 caches")  # fmt: skip
    refused(["sweep", *two, "--out", str(tmp_path / "b")], "a sweep takes one --cache, not 2")
    refused(["export", str(fused_run[0]), str(tmp_path / "c")],
            "a fused run has several encoders; serve or predict it")  # fmt: skip
    # The same speakers and paths ("we..."), but the Welsh speakers' clips labelled otherwise.
    other = dataclasses.replace(CORPUS, accents=("Irish", "Northern", "Southern", "Wessex"))
    relabelled = write_synthetic_cache(tmp_path / "relabelled", other, seed=2, encoder=NARROW)
    refused(["fit", "--cache", str(wide), "--cache", str(relabelled), "--out",
             str(tmp_path / "d"), "--model", "clip-linear", *FIT],
            "carry other accents or speakers")  # fmt: skip


@pytest.fixture(scope="module")
def ge2e_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random GE2E weights in Resemblyzer's layout: a second real encoder with no download."""
    from torch_checkpoint import random_ge2e_state, write_checkpoint

    folder = tmp_path_factory.mktemp("ge2e")
    return write_checkpoint(folder / "random.pt", {"model_state": random_ge2e_state()})


def test_predict_runs_each_file_through_every_encoder_of_a_fused_run(
    speech_run: Path, synthetic_corpus: Path, ge2e_checkpoint: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    from brogue.extract import pipeline
    from brogue.extract.corpus import openslr83_clips
    from brogue.extract.ge2e.encoder import GE2EEncoder
    from brogue.inference.calibration import CalibrationMap
    from brogue.inference.predict import predict
    from brogue.inference.trained_run import load_encoders, load_run
    from brogue.train.config import make_config
    from brogue.train.fusion import load_fused

    yamnet, ge2e = speech_run.parent / "cache", tmp_path / "ge2e"
    pipeline.run(openslr83_clips(synthetic_corpus), GE2EEncoder(str(ge2e_checkpoint)), ge2e,
                 workers=0, progress=False)  # fmt: skip
    run = tmp_path / "run"
    assert main(["fit", "--cache", str(yamnet), "--cache", str(ge2e), "--out", str(run),
                 "--model", "clip-linear", "--split", "random", "--no-tensorboard"]) == 0
    trained = load_run(run)
    encoders = load_encoders(trained)
    assert [encoder.name for encoder in encoders] == ["yamnet", "ge2e"]
    files = sorted(synthetic_corpus.glob("*/*.wav"))[::6]
    predictions = list(predict(trained, encoders, files))

    # What evaluate scores for the same clips, from both caches' frames.
    corpus = load_fused([yamnet, ge2e])
    chosen = np.isin(corpus.stem, [file.stem for file in files])
    feed = corpus.clip_feed(chosen, make_config({}), 2**26, shuffle=False)
    calibration = CalibrationMap.from_json(trained.facts["calibration"], len(trained.accents))
    raw = keras.models.load_model(run / "model.keras").predict(feed, verbose=0)
    expected = dict(zip(corpus.stem[chosen], calibration.apply(raw), strict=True))
    assert len(predictions) == len(files) == len(expected)
    for prediction in predictions:
        np.testing.assert_allclose(prediction.probabilities[:-1],
                                   expected[Path(prediction.path).stem], atol=1e-4)
        # A fused model has no answer for one encoder's frame alone: no frame probabilities.
        assert prediction.frame_probabilities is None
        assert prediction.to_json()["frame_probabilities"] is None

    capsys.readouterr()
    assert main(["predict", str(run), str(files[0])]) == 0
    assert capsys.readouterr().out.startswith(f"{files[0]}: {predictions[0].accent};")
