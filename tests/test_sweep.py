"""`brogue sweep`: an Optuna study over the families on a small synthetic cache, shared by two
worker processes, interrupted and resumed, pruned, and scored on test once."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest

import brogue.train.sweep
from brogue.main import main
from brogue.train.config import TrainConfig
from brogue.train.sweep import SweepError, load_space, open_study, sweep, trial_config
from dev.synthetic_cache import SyntheticCorpus, write_synthetic_cache

# Small models, two epochs: each trial takes a few seconds.
SPACE = {
    "frame-dense": {"depth": [1, 2], "widths": [16, 32], "dropout": [0.0, 0.2],
                    "learning_rate": [1e-3, 3e-3], "batch_sizes": [64, 128]},
    "clip-linear": {"linear_c": [0.01, 1.0]},
    "clip-attention": {"attention_width": [16], "attention_dropout": [0.0, 0.2],
                       "learning_rate": [1e-3, 3e-3], "batch_sizes": [16]},
}  # fmt: skip
QUICK = ["--epochs", "2", "--no-tensorboard"]
RUN_FILES = {"config.json", "split.json", "run.json", "model.keras", "metrics.json",
             "decisions.csv"}  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_cache(tmp_path_factory.mktemp("cache"), SyntheticCorpus(), seed=0)


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("space") / "space.json"
    path.write_text(json.dumps(SPACE))
    return path


@pytest.fixture(scope="module")
def parallel_sweep(cache: Path, space: Path, tmp_path_factory: pytest.TempPathFactory):
    """Two trials by two worker processes on one study, through the command line."""
    out = tmp_path_factory.mktemp("sweeps") / "sweep"
    flags = ["--cache", str(cache), "--out", str(out), "--space", str(space), "--trials", "2"]
    assert main(["sweep", *flags, "--jobs", "2", *QUICK]) == 0
    return out


def read_table(out: Path) -> list[dict[str, str]]:
    with open(out / "trials.csv", newline="") as table:
        return list(csv.DictReader(table))


def test_two_workers_share_one_study(parallel_sweep: Path) -> None:
    study = open_study(f"sqlite:///{parallel_sweep / 'study.db'}", seed=0,
                       objective="clip_balanced_accuracy")
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert sorted(t.number for t in trials) == [0, 1]
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}
    assert sorted(p.name for p in (parallel_sweep / "trials").iterdir()) == [
        f"trial-00{k}" for k in range(2)]


def test_sweep_writes_table_plots_and_the_best_run(parallel_sweep: Path) -> None:
    rows = read_table(parallel_sweep)
    assert [row["trial"] for row in rows] == ["0", "1"]
    assert list(rows[0]) == ["trial", "state", "model", "settings", "clip_balanced_accuracy",
                             "epochs", "best_epoch", "seconds"]  # fmt: skip
    assert all(row["state"] == "complete" and float(row["seconds"]) > 0 for row in rows)
    assert all(row["model"] in SPACE and row["settings"] for row in rows)
    best = max(rows, key=lambda row: float(row["clip_balanced_accuracy"]))
    assert RUN_FILES <= {path.name for path in (parallel_sweep / "best").iterdir()}
    config = json.loads((parallel_sweep / "best" / "config.json").read_text())
    trial = json.loads((parallel_sweep / "trials" / f"trial-00{best['trial']}" /
                        "config.json").read_text())  # fmt: skip
    assert config == trial and config["model"] == best["model"]
    metrics = json.loads((parallel_sweep / "best" / "metrics.json").read_text())
    assert metrics["valid"]["clip"]["balanced_accuracy"] == pytest.approx(
        float(best["clip_balanced_accuracy"]))
    for plot in ("optimization_history.png", "param_importances.png"):
        assert (parallel_sweep / plot).read_bytes()[:4] == b"\x89PNG"


def test_only_the_chosen_trial_is_scored_on_test(parallel_sweep: Path) -> None:
    for folder in (parallel_sweep / "trials").iterdir():
        assert "test" not in json.loads((folder / "metrics.json").read_text())
    metrics = json.loads((parallel_sweep / "best" / "metrics.json").read_text())
    assert set(metrics["test"]["speakers"].values()) == {1}
    low, high = metrics["test"]["clip"]["interval"]
    assert low <= metrics["test"]["clip"]["balanced_accuracy"] <= high


def test_trial_settings_are_drawn_from_the_space(space: Path) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        config = trial_config(study.ask(), load_space(space), TrainConfig())
        seen.add(config.model)
        if config.model == "frame-dense":
            assert 1 <= len(config.layers) <= 2
            assert all(w in (16, 32) and 0.0 <= d <= 0.2 for w, d in config.layers)
            assert 1e-3 <= config.learning_rate <= 3e-3 and config.batch_size in (64, 128)
        elif config.model == "clip-linear":
            assert 0.01 <= config.linear_c <= 1.0 and config.layers == TrainConfig().layers
        else:
            assert config.attention_width == 16 and config.batch_size == 16
            assert 0.0 <= config.attention_dropout <= 0.2
    assert seen == set(SPACE)


def test_an_interrupted_sweep_resumes_without_rerunning_finished_trials(
    cache: Path, space: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    real_fit = brogue.train.sweep.fit
    calls: list[str] = []

    def interrupted_fit(cache, out, config, **kwargs):
        calls.append(out.name)
        if len(calls) == 2:
            out.mkdir(parents=True)
            (out / "model.keras").write_bytes(b"half written")
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-trial
        return real_fit(cache, out, config, **kwargs)

    monkeypatch.setattr(brogue.train.sweep, "fit", interrupted_fit)
    base = TrainConfig(epochs=2, tensorboard=False)
    out = tmp_path / "sweep"
    with pytest.raises(KeyboardInterrupt):
        sweep(cache, out, base, load_space(space), trials=3)
    finished = (out / "trials" / "trial-000" / "metrics.json").stat().st_mtime_ns

    sweep(cache, out, base, load_space(space), trials=3)
    assert calls == ["trial-000", "trial-001", "trial-002", "trial-003"]
    assert (out / "trials" / "trial-000" / "metrics.json").stat().st_mtime_ns == finished
    assert [row["state"] for row in read_table(out)] == ["complete", "fail", "complete",
                                                         "complete"]  # fmt: skip
    assert not (out / "trials" / "trial-001").exists()  # an interrupted trial leaves nothing
    # Growing the sweep runs only the new trials.
    sweep(cache, out, base, load_space(space), trials=4)
    assert calls[4:] == ["trial-004"]
    assert f"sweep of 4 trials in {out}: 3 already finished, 1 to run" in capsys.readouterr().out


def test_poor_keras_trials_are_pruned(cache: Path, space: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # A pruner no trial can satisfy: every Keras trial stops after its first epoch's report.
    monkeypatch.setattr(brogue.train.sweep, "make_pruner",
                        lambda: optuna.pruners.ThresholdPruner(lower=1.5))  # fmt: skip
    keras_only = tmp_path / "space.json"
    keras_only.write_text(json.dumps({"frame-dense": SPACE["frame-dense"]}))
    base = TrainConfig(epochs=3, tensorboard=False)
    with pytest.raises(SweepError, match="no trial of the sweep in .* finished"):
        sweep(cache, tmp_path / "sweep", base, load_space(keras_only), trials=2)
    rows = read_table(tmp_path / "sweep")
    assert [(row["state"], row["epochs"]) for row in rows] == [("pruned", "1"), ("pruned", "1")]
    assert all(0.0 <= float(row["clip_balanced_accuracy"]) <= 1.0 for row in rows)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("trial")]
    assert [line.split(": pruned after 1 epochs at clip_balanced_accuracy ")[0] for line in lines
            ] == [f"trial   {k} (frame-dense, {row['settings']})" for k, row in enumerate(rows)]


def test_errors_are_one_line(
    cache: Path, space: Path, parallel_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    flags = ["--cache", str(cache), "--space", str(space), "--trials", "2", *QUICK]
    assert main(["sweep", *flags, "--out", str(parallel_sweep), "--learning-rate", "0.5"]) == 0
    assert main(["sweep", *flags, "--out", str(parallel_sweep), "--seed", "1"]) == 1
    bad_space = tmp_path / "space.json"
    bad_space.write_text(json.dumps({"frame-dense": {**SPACE["frame-dense"], "depth": [3, 1]}}))
    assert main(["sweep", *flags, "--out", str(tmp_path / "a"), "--space", str(bad_space)]) == 1
    assert main(["sweep", *flags, "--out", str(tmp_path / "b"), "--folds", "2"]) == 1
    assert main(["sweep", *flags, "--out", str(tmp_path / "c"), "--objective", "frame_auc"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [
        f"error: sqlite:///{(parallel_sweep / 'study.db').absolute()} holds a sweep with other "
        "settings, cache or space; choose a new --out or --storage",
        f"error: search space {bad_space}: frame-dense.depth must be [low, high], got [3, 1]",
        "error: a sweep scores trials on one split; folds must be 1, got 2",
        "error: frame_auc scores frame-level models only: search frame-dense alone",
    ]
    for text, message in (("[]", "must be a JSON object with one or more of the families"),
                          ('{"clip-linear": {"C": [1, 2]}}', "clip-linear must have exactly")):
        bad_space.write_text(text)
        with pytest.raises(SweepError, match=message):
            load_space(bad_space)


def test_a_log_loss_sweep_minimises(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert open_study(url, seed=0, objective="log_loss").direction.name == "MINIMIZE"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    balanced = open_study(other, seed=0, objective="clip_balanced_accuracy")
    assert balanced.direction.name == "MAXIMIZE"
