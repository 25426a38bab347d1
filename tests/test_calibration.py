"""Calibration on a learnable synthetic cache: fitted on valid clips only, it lowers the test
log loss, never moves the answer, and the test side cannot reach it."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.stats import binom

from brogue.inference.calibration import identity
from brogue.inference.evidence import RunEvidence
from brogue.main import main
from brogue.train.calibration import calibration_scores, ece_if_calibrated, fit_map
from dev.synthetic_cache import SyntheticCorpus, write_synthetic_cache

# clip-linear with a weak L2 penalty; its probabilities are far from calibrated on new speakers.
FIT = ["--model", "clip-linear", "--linear-c", "100", "--valid-ratio", "0.25", "--test-ratio",
       "0.25", "--no-tensorboard"]  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = SyntheticCorpus(speakers=(6, 6, 8, 6))
    return write_synthetic_cache(tmp_path_factory.mktemp("cache"), corpus, seed=3)


@pytest.fixture(scope="module")
def run(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(["fit", "--cache", str(cache), "--out", str(out), *FIT]) == 0
    return out


def _probabilities(run: Path, side: str) -> tuple[np.ndarray, np.ndarray]:
    with open(run / "probabilities.csv", newline="") as table:
        rows = [row for row in csv.DictReader(table) if row["side"] == side]
    raw = np.array([[float(v) for k, v in row.items() if k.startswith("raw:")] for row in rows])
    after = np.array([[float(v) for k, v in row.items() if k.startswith("calibrated:")]
                      for row in rows])  # fmt: skip
    return raw, after


def test_the_temperature_fitted_on_valid_lowers_the_test_log_loss(run: Path) -> None:
    facts = json.loads((run / "run.json").read_text())["calibration"]
    assert facts["kind"] == "temperature" and facts["fitted_on"] == "valid"
    assert abs(np.log(facts["temperature"])) > 0.2  # the map does something
    test = json.loads((run / "metrics.json").read_text())["test"]["clip"]["calibration"]
    assert test["after"]["log_loss"] < test["before"]["log_loss"]
    assert test["after"]["ece"] < test["before"]["ece"]
    assert (run / "reliability.png").stat().st_size > 0


def test_the_map_never_changes_the_answer(run: Path) -> None:
    for side in ("train", "valid", "test"):
        raw, after = _probabilities(run, side)
        np.testing.assert_array_equal(raw.argmax(axis=1), after.argmax(axis=1))
        np.testing.assert_allclose(after.sum(axis=1), 1.0, atol=1e-5)
    probabilities = np.random.default_rng(0).dirichlet(np.full(5, 0.3), 500)
    truth = np.random.default_rng(1).integers(0, 5, 500)
    cooled = fit_map(probabilities, truth, "temperature").apply(probabilities)
    np.testing.assert_array_equal(cooled.argmax(axis=1), probabilities.argmax(axis=1))


def test_the_map_is_never_fitted_on_test_clips(cache: Path, run: Path, tmp_path: Path) -> None:
    """The test speakers' embeddings are replaced by noise: training, validation and the map
    stay as they were; only the test scores move."""
    poisoned = Path(shutil.copytree(cache, tmp_path / "poisoned"))
    tested = set(json.loads((run / "split.json").read_text())["test_clips"])
    rng = np.random.default_rng(7)
    for shard in sorted(poisoned.glob("shard-*.h5")):
        with h5py.File(shard, "r+") as file:
            clips = file["clips"]
            hashes = [h.decode() if isinstance(h, bytes) else h for h in clips["content_hash"][:]]
            embeddings = file["embeddings"]
            for row, content in enumerate(hashes):
                if content in tested:
                    start, count = int(clips["frame_start"][row]), int(clips["num_frames"][row])
                    embeddings[start:start + count] = 5 * rng.normal(
                        size=(count, embeddings.shape[1]))
    out = tmp_path / "run"
    assert main(["fit", "--cache", str(poisoned), "--out", str(out), *FIT]) == 0
    before = json.loads((run / "run.json").read_text())["calibration"]
    after = json.loads((out / "run.json").read_text())["calibration"]
    assert after == before
    scores = [json.loads((folder / "metrics.json").read_text())["test"]["clip"]["calibration"]
              for folder in (run, out)]  # fmt: skip
    assert scores[0]["before"]["log_loss"] != scores[1]["before"]["log_loss"]


def test_the_measures_on_known_probabilities() -> None:
    # Two speakers, four clips: top probabilities 0.9 (right), 0.9 (wrong), 0.6 (right, twice).
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    truth = np.array([0, 1, 1, 1])
    scores = calibration_scores(probabilities, truth, np.array(["a", "b", "a", "b"]), seed=0)
    # Bin of 0.9: 2 clips, accuracy 0.5 -> |0.9 - 0.5|; bin of 0.6: 2 clips, accuracy 1 -> 0.4.
    assert scores["ece"] == pytest.approx((2 * 0.4 + 2 * 0.4) / 4)
    assert scores["accuracy"] == pytest.approx(0.75)
    assert scores["mean_top_probability"] == pytest.approx(0.75)
    assert scores["brier"] == pytest.approx((0.02 + 1.62 + 0.32 + 0.32) / 4)
    assert scores["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.1, 0.6, 0.6])))
    bins = {b["low"]: b for b in scores["bins"] if b["count"]}
    assert sorted(bins) == [pytest.approx(9 / 15), pytest.approx(13 / 15)]
    # Two calibrated clips at 0.9: both right with chance 0.81, one with 0.18, none with 0.01,
    # so 95% of calibrated answers show an accuracy of 0.5 or 1; at 0.6 (none right: 0.16), 0 to 1.
    ranges = [b["calibrated_accuracy_range"] for _, b in sorted(bins.items())]
    assert ranges == [[0.0, 1.0], [0.5, 1.0]]
    assert identity(2).apply(probabilities) == pytest.approx(probabilities, abs=1e-6)


def test_the_ece_of_calibrated_answers_is_chance_alone() -> None:
    # Certain answers that are calibrated are always right: no ECE by chance.
    assert ece_if_calibrated(np.array([[1.0, 0.0]] * 50), seed=0) == pytest.approx(0.0)
    # 400 clips all at 0.5 share one bin; its ECE is |K/400 - 0.5| with K ~ Binomial(400, 0.5).
    k = np.arange(401)
    expected = float((binom.pmf(k, 400, 0.5) * np.abs(k / 400 - 0.5)).sum())
    chance = ece_if_calibrated(np.full((400, 2), 0.5), seed=0)
    assert chance.mean() == pytest.approx(expected, rel=0.05)
    scores = calibration_scores(np.full((400, 2), 0.5), np.zeros(400, dtype=int),
                                np.arange(400).astype(str), seed=0)  # fmt: skip
    low, high = scores["ece_if_calibrated_interval"]
    assert low < scores["ece_if_calibrated"] < high
    assert scores["ece_if_calibrated"] == pytest.approx(expected, rel=0.05)


def test_a_near_chance_run_says_so_and_earns_no_label(run: Path) -> None:
    evidence = RunEvidence.load(run, 4)
    near_chance = RunEvidence(4, {**evidence.test, "interval": [0.2, 0.6]}, evidence.seen)
    sure = near_chance.how_sure("Irish", 0.97)
    assert "not been shown to beat guessing" in sure["sentence"] and sure["label"] is None
    above = RunEvidence(4, {**evidence.test, "interval": [0.6, 0.9]}, evidence.seen)
    assert "beat guessing" not in above.how_sure("Irish", 0.97)["sentence"]
