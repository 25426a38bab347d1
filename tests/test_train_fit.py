"""`brogue fit` and `evaluate` end to end on a small synthetic cache: three sides, nested folds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from brogue.main import main
from dev.synthetic_cache import SyntheticCorpus, write_synthetic_cache

# Few epochs at a larger learning rate than the example's, so the test takes seconds.
# SyntheticCorpus(): 3 + 4 + 8 + 4 speakers over 4 accents, 6 clips each.
SPEAKERS, CLIPS = 19, 19 * 6
QUICK = ["--epochs", "6", "--learning-rate", "1e-3", "--batch-size", "32", "--no-tensorboard"]
RUN_FILES = (
    "config.json", "split.json", "run.json", "model.keras", "history.csv", "metrics.json",
    "history.png", "confusion_frame.png", "confusion_clip.png", "decisions.csv",
    "probabilities.csv", "reliability.png",
)  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_cache(tmp_path_factory.mktemp("cache"), SyntheticCorpus(), seed=0)


@pytest.fixture(scope="module")
def run(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fit whose budget (3 MB) is smaller than its training frames (~4 MB): it streams."""
    out = tmp_path_factory.mktemp("runs") / "run"
    flags = ["--ram-budget-mb", "3", "--block-frames", "32"]
    assert main(["fit", "--cache", str(cache), "--out", str(out), *QUICK, *flags]) == 0
    return out


def test_fit_writes_a_complete_run(run: Path) -> None:
    assert sorted(path.name for path in run.iterdir()) == sorted(RUN_FILES)
    facts = json.loads((run / "run.json").read_text())
    assert "streamed from shards" in facts["feed"]["train"]
    assert 1 <= facts["epochs_run"] <= 6 and facts["seconds_per_epoch"] > 0
    config = json.loads((run / "config.json").read_text())
    assert (config["epochs"], config["learning_rate"], config["split"]) == (6, 1e-3, "speaker")


def test_speaker_split_truly_separates_speakers(run: Path, cache: Path) -> None:
    split = json.loads((run / "split.json").read_text())
    assert split["kind"] == "speaker" and split["seed"] == 1337
    sides = [set(split[f"{side}_speakers"]) for side in ("train", "valid", "test")]
    assert sum(map(len, sides)) == len(set().union(*sides)) == SPEAKERS  # no speaker on two sides
    manifest = json.loads((cache / "manifest.json").read_text())
    for speakers in sides:  # every accent (3 or more speakers each) is on every side
        assert {manifest["speakers"][s]["label"] for s in speakers} == set(manifest["labels"])
    clips = sum(len(split[f"{side}_clips"]) for side in ("train", "valid", "test"))
    assert clips == CLIPS


def test_metrics_have_every_level_and_beat_the_baseline(run: Path) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    for side in ("train", "valid", "test"):
        assert set(metrics[side]) == {"frame", "clip", "speaker", "baseline", "speakers"}
        for level in ("clip", "speaker"):
            low, high = metrics[side][level]["interval"]
            assert low <= metrics[side][level]["balanced_accuracy"] <= high
        frame = metrics[side]["frame"]
        assert {"loss", "accuracy", "auc", "d_prime", "per_class", "confusion"} <= set(frame)
        assert set(frame["per_class"]) == set(metrics["classes"])
        assert {"accuracy", "balanced_accuracy", "macro_f1"} <= set(metrics[side]["clip"])
    valid = metrics["valid"]
    assert valid["clip"]["accuracy"] >= valid["baseline"]["accuracy"] + 0.3
    assert valid["speaker"]["accuracy"] >= 0.75
    assert np.sum(valid["frame"]["confusion"]) == metrics["split"]["valid"]["frames"]
    assert np.sum(valid["clip"]["confusion"]) == metrics["split"]["valid"]["clips"]
    assert np.sum(metrics["test"]["clip"]["confusion"]) == metrics["split"]["test"]["clips"]
    # The synthetic cache has 3, 4, 8 and 4 speakers per accent: one of each is tested.
    assert metrics["test"]["speakers"] == {"Irish": 1, "Northern": 1, "Southern": 1, "Welsh": 1}
    valid_speakers = metrics["split"]["valid"]["speakers"]
    assert metrics["split"]["train"]["speakers"] == SPEAKERS - 4 - valid_speakers
    assert set(metrics["class_weight"]) == set(metrics["classes"])
    assert metrics["epochs_run"] >= 1 and metrics["seconds_per_epoch"] > 0


def test_evaluate_rescores_the_saved_model(run: Path, capsys: pytest.CaptureFixture) -> None:
    before = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").unlink()
    assert main(["evaluate", str(run)]) == 0
    after = json.loads((run / "metrics.json").read_text())
    assert after["valid"]["clip"] == before["valid"]["clip"]
    assert after["test"]["clip"] == before["test"]["clip"]
    assert after["valid"]["frame"]["auc"] == pytest.approx(before["valid"]["frame"]["auc"])
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["train", "valid", "test"]
    balanced = next(line for line in table if line.startswith("clip balanced accuracy"))
    low, high = before["test"]["clip"]["interval"]
    assert balanced.endswith(f"{before['test']['clip']['balanced_accuracy']:.3f} "
                             f"[{low:.2f}, {high:.2f}]")  # fmt: skip
    assert ("warning: fewer than 3 test speakers for Irish 1, Northern 1, "
            "Southern 1, Welsh 1: their test scores rest on few voices") in table
    assert any(line.startswith("calibration of the test clips") for line in table)


def test_nested_folds_test_every_speaker_once(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "folds"
    quick = ["--epochs", "1", "--no-tensorboard", "--model", "clip-linear"]
    assert main(["fit", "--cache", str(cache), "--out", str(out), "--folds", "3", *quick]) == 0
    splits = [json.loads((out / f"fold-{k}" / "split.json").read_text()) for k in (1, 2, 3)]
    tested = [set(split["test_speakers"]) for split in splits]
    assert sum(map(len, tested)) == len(set().union(*tested)) == SPEAKERS  # each speaker once
    for split, test in zip(splits, tested, strict=True):
        # The fold's selection (train and valid) never sees its test speakers.
        assert not test & (set(split["train_speakers"]) | set(split["valid_speakers"]))
        assert split["valid_speakers"] and not set(split["valid_speakers"]) & set(
            split["train_speakers"])
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["folds"] == 3 and len(summary["test"]["clip"]["accuracy"]["values"]) == 3
    folds = [json.loads((out / f"fold-{k}" / "metrics.json").read_text()) for k in (1, 2, 3)]
    values = [fold["test"]["clip"]["balanced_accuracy"] for fold in folds]
    assert summary["test"]["clip"]["balanced_accuracy"]["mean"] == pytest.approx(np.mean(values))
    pooled = summary["test_pooled"]
    assert pooled["speaker"]["count"] == SPEAKERS
    assert pooled["clip"]["count"] == sum(fold["split"]["test"]["clips"] for fold in folds)
    for level in ("clip", "speaker"):
        low, high = pooled[level]["interval"]
        assert low <= pooled[level]["balanced_accuracy"] <= high and low < high


def test_errors_are_one_line(cache: Path, run: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["fit", "--cache", str(cache), "--out", str(run)]) == 1
    assert main(["evaluate", str(cache)]) == 1
    assert main(["fit", "--cache", str(run), "--out", str(run / "x")]) == 1
    index = ["--index", str(cache / "line_index_all.csv")]
    assert main(["fit", "--cache", str(cache), "--out", str(run / "y"), *index]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [
        f"error: {run} already holds files; choose a new --out",
        f"error: {cache} is not a finished run folder (no run.json or model.keras)",
        f"error: no manifest.json in {run}; run `brogue extract` first",
        "error: an index file gives the example's row order, for split=random only",
    ]
