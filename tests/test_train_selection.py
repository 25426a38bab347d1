"""Honest selection: three sides by speaker, test never read before the model is final, and
speaker-bootstrap intervals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from brogue.main import main
from brogue.train.config import make_config
from brogue.train.dataset import load_corpus
from brogue.train.metrics import speaker_bootstrap
from brogue.train.splits import SplitWarning, make_splits, speaker_folds, three_way
from dev.synthetic_cache import SyntheticCorpus, write_synthetic_cache

# OpenSLR 83's speakers per accent.
OPENSLR83 = {"Southern": 57, "Northern": 19, "Welsh": 19, "Scottish": 17, "Midlands": 5,
             "Irish": 3}  # fmt: skip


def openslr83_speakers() -> dict[str, str]:
    return {f"{accent}-{n}": accent for accent, count in OPENSLR83.items() for n in range(count)}


def test_every_openslr83_accent_keeps_a_speaker_on_each_side() -> None:
    speakers = openslr83_speakers()
    valid, test = three_way(speakers, 0.1, 0.1, seed=1337)
    assert not set(valid) & set(test)
    train = set(speakers) - set(valid) - set(test)
    for accent, count in OPENSLR83.items():
        sides = [sum(speakers[s] == accent for s in side) for side in (train, valid, test)]
        assert sum(sides) == count and min(sides) >= 1
        if accent == "Irish":  # three speakers: one each, and no more
            assert sides == [1, 1, 1]
    # round(10%) of each accent, at least 1: 6 + 2 + 2 + 2 + 1 + 1 on each side
    assert (len(valid), len(test)) == (14, 14)
    assert three_way(speakers, 0.1, 0.1, seed=1337) == (valid, test)
    assert three_way(speakers, 0.1, 0.1, seed=1) != (valid, test)


def test_an_accent_of_two_speakers_is_tested_not_validated() -> None:
    speakers = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "b2": "B"}
    with pytest.warns(SplitWarning, match="'B' has a single speaker left, so it is trained on, "
                                          "never validated"):  # fmt: skip
        valid, test = three_way(speakers, 0.3, 0.3, seed=0)
    assert sum(s.startswith("b") for s in test) == 1 and not any(s.startswith("b") for s in valid)


def test_nested_folds_hold_each_folds_test_speakers_out_of_its_selection(tmp_path: Path) -> None:
    corpus = load_corpus(write_synthetic_cache(tmp_path, SyntheticCorpus(), seed=0))
    splits = make_splits(corpus, make_config({"folds": 3}), index=None)
    folds = speaker_folds(corpus.speaker_labels(), 3, 1337)
    for split, fold in zip(splits, folds, strict=True):
        assert set(corpus.speaker[split.test]) == set(fold)
        assert not (split.train & split.valid).any() and not (split.test & split.valid).any()
        assert not (split.train & split.test).any()
        assert (split.train | split.valid | split.test).all()
        assert not set(corpus.speaker[split.test]) & set(corpus.speaker[~split.test])


def _scramble_test_speakers(cache: Path, copy: Path) -> np.ndarray:
    """A copy of `cache` whose test speakers' embeddings are replaced by noise; returns the
    test mask of the default split."""
    shutil.copytree(cache, copy)
    corpus = load_corpus(copy)
    (split,) = make_splits(corpus, make_config({}), index=None)
    corpus.cache.close()  # HDF5 opens a file once per process: read-only here, r+ below
    rng = np.random.default_rng(7)
    for clip in np.flatnonzero(split.test):
        path = corpus.cache.shard_paths[corpus.shard[clip]]
        start, stop = corpus.frame_start[clip], corpus.frame_start[clip] + corpus.num_frames[clip]
        with h5py.File(path, "r+") as shard:
            rows = shard["embeddings"][start:stop]
            shard["embeddings"][start:stop] = rng.normal(0, 3, rows.shape).astype(rows.dtype)
    return split.test


@pytest.mark.parametrize("model", ["clip-linear", "frame-dense"])
def test_selection_never_reads_the_test_speakers(model: str, tmp_path: Path) -> None:
    cache = write_synthetic_cache(tmp_path / "cache", SyntheticCorpus(), seed=0)
    _scramble_test_speakers(cache, tmp_path / "scrambled")
    flags = ["--model", model, "--epochs", "3", "--learning-rate", "1e-3", "--no-tensorboard"]
    runs = {}
    for name in ("cache", "scrambled"):
        runs[name] = tmp_path / f"run-{name}"
        assert main(["fit", "--cache", str(tmp_path / name), "--out", str(runs[name]), *flags]) == 0
    metrics = [json.loads((runs[name] / "metrics.json").read_text()) for name in runs]
    # Training, early stopping and the checkpoint saw the same data: the same model came out.
    for side in ("train", "valid"):
        assert metrics[0][side]["clip"] == metrics[1][side]["clip"]
    assert metrics[0]["best_epoch"] == metrics[1]["best_epoch"]
    # Only the test side, scored after the model was final, read the changed frames.
    assert metrics[0]["test"]["clip"]["confusion"] != metrics[1]["test"]["clip"]["confusion"]


def test_the_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(0)
    speakers = np.repeat(np.arange(24), 10)
    truth = speakers % 3
    predicted = np.where(rng.random(len(truth)) < 0.6, truth, rng.integers(0, 3, len(truth)))
    interval = speaker_bootstrap(truth, predicted, speakers, seed=5)
    assert interval == speaker_bootstrap(truth, predicted, speakers, seed=5)
    assert interval != speaker_bootstrap(truth, predicted, speakers, seed=6)
    recalls = [np.mean(predicted[truth == k] == k) for k in range(3)]
    assert interval[0] < np.mean(recalls) < interval[1]
    assert speaker_bootstrap(truth, truth, speakers, seed=5) == [1.0, 1.0]


def test_the_bootstrap_resamples_speakers_not_clips() -> None:
    # Two accents of two speakers each: one speaker always right, one always wrong. Each
    # accent's recall is then 0, 1/2 or 1 (chance 1/4, 1/2, 1/4), however many clips each
    # speaker has, so balanced accuracy is 0 or 1 with chance 1/16 each: the 95% interval
    # spans [0, 1]. Resampling clips would give a narrow interval around 0.5.
    speakers = np.repeat(np.arange(4), 50)
    truth = speakers // 2
    predicted = np.where(speakers % 2 == 0, truth, 1 - truth)
    assert speaker_bootstrap(truth, predicted, speakers, seed=0) == [0.0, 1.0]
