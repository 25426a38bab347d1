"""`brogue sweep`: a random search on a small synthetic cache, interrupted and resumed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import brogue.train.sweep
from brogue.dev.synthetic_cache import SyntheticCorpus, write_synthetic_cache
from brogue.main import main
from brogue.train.config import TrainConfig
from brogue.train.sweep import SearchSpace, SweepError, load_space, sweep, trial_config

# Small heads, two epochs: each trial takes a few seconds.
SPACE = {
    "depth": [1, 2],
    "widths": [16, 32],
    "dropout": [0.0, 0.2],
    "learning_rate": [1e-3, 3e-3],
    "batch_sizes": [64, 128],
}
QUICK = ["--epochs", "2", "--no-tensorboard"]
RUN_FILES = {"config.json", "split.json", "run.json", "model.keras", "history.csv",
             "metrics.json", "trial.json"}  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_cache(tmp_path_factory.mktemp("cache"), SyntheticCorpus(), seed=0)


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("space") / "space.json"
    path.write_text(json.dumps(SPACE))
    return path


@pytest.fixture(scope="module")
def parallel_sweep(cache: Path, space: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three trials, two at a time in worker processes, through the command line."""
    out = tmp_path_factory.mktemp("sweeps") / "sweep"
    flags = ["--cache", str(cache), "--out", str(out), "--space", str(space), "--trials", "3"]
    assert main(["sweep", *flags, "--jobs", "2", *QUICK]) == 0
    return out


def read_table(out: Path) -> list[dict[str, str]]:
    with open(out / "trials.csv", newline="") as table:
        return list(csv.DictReader(table))


def test_sweep_writes_table_plot_and_best_run(parallel_sweep: Path) -> None:
    rows = read_table(parallel_sweep)
    assert [row["trial"] for row in rows] == ["0", "1", "2"]
    columns = ["trial", "layers", "learning_rate", "batch_size", "clip_balanced_accuracy",
               "epochs", "best_epoch", "seconds"]  # fmt: skip
    assert list(rows[0]) == columns
    assert all(row["epochs"] == "2" and float(row["seconds"]) > 0 for row in rows)
    best = max(rows, key=lambda row: float(row["clip_balanced_accuracy"]))
    assert RUN_FILES <= {path.name for path in (parallel_sweep / "best").iterdir()}
    assert json.loads((parallel_sweep / "best" / "trial.json").read_text())["trial"] == int(
        best["trial"]
    )
    metrics = json.loads((parallel_sweep / "best" / "metrics.json").read_text())
    assert metrics["valid"]["clip"]["balanced_accuracy"] == pytest.approx(
        float(best["clip_balanced_accuracy"])
    )
    assert (parallel_sweep / "objective.png").read_bytes()[:4] == b"\x89PNG"


def test_trials_share_split_and_seed_and_differ_in_the_head(parallel_sweep: Path) -> None:
    trials = sorted((parallel_sweep / "trials").iterdir())
    splits = {(trial / "split.json").read_text() for trial in trials}
    assert len(splits) == 1 and json.loads(splits.pop())["kind"] == "speaker"
    configs = [json.loads((trial / "config.json").read_text()) for trial in trials]
    assert {config["seed"] for config in configs} == {1337}
    heads = {(str(c["layers"]), c["learning_rate"], c["batch_size"]) for c in configs}
    assert len(heads) == 3


def test_trial_settings_are_drawn_from_the_space_and_repeatable() -> None:
    space = SearchSpace(**{name: tuple(value) for name, value in SPACE.items()})
    for trial in range(20):
        config = trial_config(space, TrainConfig(), trial)
        assert config == trial_config(space, TrainConfig(), trial)
        assert 1 <= len(config.layers) <= 2
        assert all(w in (16, 32) and 0.0 <= d <= 0.2 for w, d in config.layers)
        assert 1e-3 <= config.learning_rate <= 3e-3 and config.batch_size in (64, 128)
    assert trial_config(space, TrainConfig(), 0) != trial_config(space, TrainConfig(), 1)


def test_an_interrupted_sweep_resumes_without_rerunning_finished_trials(
    cache: Path, space: Path, parallel_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fit = brogue.train.sweep.fit
    calls: list[str] = []

    def interrupted_fit(cache, out, config, index=None, verbose=0):
        calls.append(out.name)
        if len(calls) == 2:
            (out / "model.keras").parent.mkdir(parents=True)
            (out / "model.keras").write_bytes(b"half written")
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-trial
        return real_fit(cache, out, config, index=index, verbose=verbose)

    monkeypatch.setattr(brogue.train.sweep, "fit", interrupted_fit)
    base = TrainConfig(epochs=2, tensorboard=False)
    out = tmp_path / "sweep"
    with pytest.raises(KeyboardInterrupt):
        sweep(cache, out, base, load_space(space), trials=3)
    assert [row["trial"] for row in read_table(out)] == ["0"]
    finished = (out / "trials" / "trial-000" / "trial.json").stat().st_mtime_ns

    records = sweep(cache, out, base, load_space(space), trials=3)
    assert calls == ["trial-000", "trial-001", "trial-001", "trial-002"]
    assert (out / "trials" / "trial-000" / "trial.json").stat().st_mtime_ns == finished
    assert [row["trial"] for row in read_table(out)] == ["0", "1", "2"]
    # Same trials, same seed: in this process the scores are those of the parallel sweep.
    parallel = {row["trial"]: float(row["clip_balanced_accuracy"]) for row in
                read_table(parallel_sweep)}  # fmt: skip
    for record in records:
        assert record["clip_balanced_accuracy"] == pytest.approx(parallel[str(record["trial"])])


def test_errors_are_one_line(
    cache: Path, space: Path, parallel_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    flags = ["--cache", str(cache), "--space", str(space), "--trials", "3", *QUICK]
    assert main(["sweep", *flags, "--out", str(parallel_sweep), "--learning-rate", "0.5"]) == 0
    assert main(["sweep", *flags, "--out", str(parallel_sweep), "--seed", "1"]) == 1
    bad_space = tmp_path / "space.json"
    bad_space.write_text(json.dumps({**SPACE, "depth": [3, 1]}))
    assert main(["sweep", *flags, "--out", str(tmp_path / "a"), "--space", str(bad_space)]) == 1
    assert main(["sweep", *flags, "--out", str(tmp_path / "b"), "--folds", "2"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
    with pytest.raises(SweepError, match="must be a JSON object"):
        bad_space.write_text("[]")
        load_space(bad_space)
