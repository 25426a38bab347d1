"""`sweep`: an Optuna study over the model families and their settings, each trial a `fit`.

The space is a JSON file, by default `sweep_space.json` beside this module: one object per
family to search, holding that family's settings as [low, high] ranges or lists of choices
(`SETTINGS` says which). Every other setting comes from the base config, as for `fit`, so every
trial uses the same split and seed. Trials never run the encoder: each one reads the shards.

Optuna's TPE sampler proposes trials; a median pruner stops Keras trials whose validation score
after an epoch falls below the median of earlier trials at that epoch. Trials are chosen on the
valid speakers only, and are not scored on test at all: once the sweep ends, its best trial alone
is scored on test, and that score is printed once.

The study lives in the sweep folder (study.db, SQLite), or in any database Optuna takes
(`storage`, e.g. PostgreSQL for several machines), so rerunning the same command resumes it:
finished and pruned trials are kept, and an interrupted trial counts as failed and is replaced.
With `jobs` > 1 as many worker processes run trials of the same study.

A sweep folder holds study.db, trials/ (one run folder per trial, as `fit` writes it, without a
test side), trials.csv (every trial's state, settings, valid objective, epochs and seconds),
optuna's plots optimization_history.png and param_importances.png, and best/ (a copy of the
best trial's run folder, then scored on test).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import multiprocessing
import shutil
import socket
import time
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # Sweeps write files; they never open windows.

import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from optuna.exceptions import ExperimentalWarning  # noqa: E402
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from brogue import atomic  # noqa: E402
from brogue.errors import BrogueError  # noqa: E402
from brogue.train.config import (  # noqa: E402
    DEFAULT_JOBS,
    DEFAULT_OBJECTIVE,
    DEFAULT_TRIALS,
    MINIMISED,
    MODELS,
    OBJECTIVES,
    TrainConfig,
)
from brogue.train.dataset import load_corpus  # noqa: E402
from brogue.train.evaluate import evaluate_run  # noqa: E402
from brogue.train.fit import fit  # noqa: E402
from brogue.train.splits import SplitWarning, make_splits  # noqa: E402
from brogue.train.sweep_worker import work  # noqa: E402

DEFAULT_SPACE = Path(__file__).with_name("sweep_space.json")
STUDY = "brogue"
# family → setting → how it is drawn: "int" and "float" from [low, high], "log" log-uniformly
# from [low, high], "choice" from a list. depth, widths and dropout make frame-dense's layers.
SETTINGS = {
    "frame-dense": {"depth": "int", "widths": "choice", "dropout": "float",
                    "learning_rate": "log", "batch_sizes": "choice"},
    "clip-linear": {"linear_c": "log"},
    "clip-attention": {"attention_width": "choice", "attention_dropout": "float",
                       "learning_rate": "log", "batch_sizes": "choice"},
}  # fmt: skip
SEARCHED = ("model", "layers", "learning_rate", "batch_size", "linear_c", "attention_width",
            "attention_dropout")  # the base config's values of these go unused  # fmt: skip
# A trial's process writes a heartbeat; one silent for the grace period (killed, or its machine
# lost) is failed and retried once with the same settings.
HEARTBEAT_SECONDS, GRACE_SECONDS = 30, 120
TABLE_COLUMNS = ("trial", "state", "model", "settings", "epochs", "best_epoch", "seconds")



class SweepError(BrogueError):
    """A sweep cannot start or resume; the message is one line."""


def load_space(path: Path) -> dict[str, dict[str, list]]:
    """The search space in `path`, checked: known families, their settings, sensible bounds."""
    try:
        space = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SweepError(f"cannot read search space {path}: {error}") from error
    if not isinstance(space, dict) or not space or not set(space) <= set(MODELS):
        raise SweepError(f"search space {path} must be a JSON object with one or more of the "
                         f"families {', '.join(MODELS)} as keys")  # fmt: skip
    for family, settings in space.items():
        expected = SETTINGS[family]
        if not isinstance(settings, dict) or set(settings) != set(expected):
            raise SweepError(f"search space {path}: {family} must have exactly the settings "
                             f"{', '.join(expected)}")  # fmt: skip
        for name, kind in expected.items():
            _check_setting(path, f"{family}.{name}", kind, settings[name])
    return space


def _check_setting(path: Path, name: str, kind: str, values: Any) -> None:
    def check(ok: bool, expected: str) -> None:
        if not ok:
            raise SweepError(f"search space {path}: {name} must be {expected}, got {values!r}")

    check(isinstance(values, list) and len(values) >= 1, "a non-empty list")
    check(all(isinstance(v, int | float) for v in values), "numbers")
    if kind == "choice":
        check(min(values) > 0, "a list of choices > 0")
        return
    check(len(values) == 2 and values[0] <= values[1], "[low, high]")
    check(kind != "log" or values[0] > 0, "[low, high] with low > 0")
    check(not name.endswith("dropout") or (values[0] >= 0 and values[1] < 1), "within [0, 1)")
    check(kind != "int" or values[0] >= 1, "[low, high] with low >= 1")


def trial_config(trial: optuna.Trial, space: dict[str, dict[str, list]], base: TrainConfig
                 ) -> TrainConfig:  # fmt: skip
    """The base config with the family and its settings that `trial` draws from `space`."""
    family = trial.suggest_categorical("model", sorted(space))
    settings = space[family]

    def draw(setting: str, name: str | None = None) -> Any:
        kind, values = SETTINGS[family][setting], settings[setting]
        name = f"{family}:{name or setting}"  # one distribution per name, across families
        if kind == "choice":
            return trial.suggest_categorical(name, values)
        if kind == "int":
            return trial.suggest_int(name, *values)
        return trial.suggest_float(name, *values, log=kind == "log")

    values: dict[str, Any] = {}
    if family == "frame-dense":
        values["layers"] = tuple(
            (int(draw("widths", f"width_{k}")), round(draw("dropout", f"dropout_{k}"), 2))
            for k in range(1, draw("depth") + 1)
        )
    for setting in settings:
        if setting not in ("depth", "widths", "dropout"):
            values["batch_size" if setting == "batch_sizes" else setting] = draw(setting)
    return dataclasses.replace(base, model=family, **values)


def _describe(config: TrainConfig) -> str:
    """A trial's searched settings, short, for its line and trials.csv."""
    if config.model == "frame-dense":
        layers = ",".join(f"{width}:{dropout:g}" for width, dropout in config.layers)
        return f"layers {layers}, lr {config.learning_rate:.3g}, batch {config.batch_size}"
    if config.model == "clip-linear":
        return f"C {config.linear_c:.3g}"
    return (f"width {config.attention_width}, dropout {config.attention_dropout:.2f}, "
            f"lr {config.learning_rate:.3g}, batch {config.batch_size}")  # fmt: skip


def _storage(url: str) -> RDBStorage:
    # SQLite waits for another worker's write rather than failing at once.
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    with warnings.catch_warnings():
        # Optuna marks heartbeats experimental; that note is not for brogue's users.
        warnings.simplefilter("ignore", ExperimentalWarning)
        return RDBStorage(
            url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )  # fmt: skip


def make_pruner() -> optuna.pruners.BasePruner:
    """The median pruner, leaving the first trials and epochs alone: a median says little yet."""
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5)


def open_study(url: str, seed: int, objective: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # brogue prints a line per trial
    direction = "minimize" if objective in MINIMISED else "maximize"
    return optuna.create_study(
        storage=_storage(url), study_name=STUDY, direction=direction, load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=make_pruner(),
    )  # fmt: skip


def _trial_folder(out: Path, number: int) -> Path:
    return out / "trials" / f"trial-{number:03d}"


def _done(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def run_worker(
    cache: Path, out: Path, url: str, base: TrainConfig, space: dict, trials: int,
    objective: str, index: Path | None, worker: int,
) -> None:
    """Run `trials` trials of the study at `url`."""
    # A seed per worker and per start, so workers and resumed sweeps propose different trials.
    probe = open_study(url, base.seed, objective)
    study = open_study(url, base.seed + 1000 * worker + len(probe.trials), objective)
    level, name = OBJECTIVES[objective]

    def run(trial: optuna.Trial) -> float:
        config = trial_config(trial, space, base)
        folder = _trial_folder(out, trial.number)
        shutil.rmtree(folder, ignore_errors=True)  # what an earlier failed attempt left
        trial.set_user_attr("folder", str(folder.absolute()))
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("settings", _describe(config))
        started = time.perf_counter()

        def on_valid(epoch: int, metrics: dict[str, Any]) -> None:
            trial.set_user_attr("epochs", epoch + 1)
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
            trial.report(metrics[level][name], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"after {epoch + 1} epochs at {objective} "
                                         f"{metrics[level][name]:.4f}")  # fmt: skip

        # The parent already showed the split's warnings; a trial prints one line.
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore", SplitWarning)
                metrics = fit(cache, folder, config, index=index, verbose=0, on_valid=on_valid,
                              test=False)  # fmt: skip
        except optuna.TrialPruned as pruned:
            print(f"trial {trial.number:3d} ({config.model}, {_describe(config)}): pruned "
                  f"{pruned}", flush=True)  # fmt: skip
            raise
        seconds = round(time.perf_counter() - started, 2)
        for key, value in (("epochs", metrics["epochs_run"]), ("best_epoch", metrics["best_epoch"]),
                           ("seconds", seconds)):  # fmt: skip
            trial.set_user_attr(key, value)
        value = metrics["valid"][level][name]
        print(f"trial {trial.number:3d} ({config.model}, {_describe(config)}): valid {objective} "
              f"{value:.4f} in {seconds:.1f} s", flush=True)  # fmt: skip
        return value

    study.optimize(run, n_trials=trials)


def _identity(cache: Path, fingerprint: str, base: TrainConfig, space: dict, objective: str,
              index: Path | None) -> dict[str, Any]:  # fmt: skip
    """What makes two sweeps the same sweep; the trial count may grow."""
    return {
        "cache": str(cache.absolute()),
        "fingerprint": fingerprint,
        "objective": objective,
        "index": str(index) if index else None,
        "base": {k: v for k, v in base.to_dict().items() if k not in SEARCHED},
        "space": space,
    }


def _start_or_resume(out: Path, url: str, identity: dict[str, Any], seed: int) -> optuna.Study:
    """The study at `url`, created or checked to be this sweep's."""
    if not (out / "study.db").exists() and out.exists() and any(out.iterdir()) \
            and url == _default_url(out):  # fmt: skip
        raise SweepError(f"{out} already holds files that are not a sweep; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(url, seed, identity["objective"])
    saved = study.user_attrs.get("identity")
    if saved is None:
        study.set_user_attr("identity", identity)
    elif saved != json.loads(json.dumps(identity)):
        raise SweepError(f"{url} holds a sweep with other settings, cache or space; "
                         "choose a new --out or --storage")  # fmt: skip
    return study


def _default_url(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').absolute()}"


def _run_workers(arguments: dict[str, Any], pending: int, jobs: int) -> None:
    """`pending` trials shared among `jobs` workers; one runs in this process."""
    shares = [pending // jobs + (number < pending % jobs) for number in range(jobs)]
    if jobs == 1:
        run_worker(**arguments, trials=pending, worker=0)
        return
    # Spawned, not forked: each worker starts its own Keras, silenced before it loads.
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=work, args=({**arguments, "trials": share, "worker": n},))
               for n, share in enumerate(shares) if share]  # fmt: skip
    for process in workers:
        process.start()
    for process in workers:
        process.join()
    failed = sum(process.exitcode != 0 for process in workers)
    if failed:
        raise SweepError(f"{failed} of {len(workers)} sweep workers failed; run the same command "
                         "again to resume")  # fmt: skip


def write_table(out: Path, study: optuna.Study, objective: str) -> None:
    """trials.csv: every trial that finished, was pruned or failed, in trial order."""
    columns = [*TABLE_COLUMNS[:4], objective, *TABLE_COLUMNS[4:]]
    with atomic.atomic_path(out / "trials.csv") as partial, open(partial, "w", newline="") as table:
        writer = csv.DictWriter(table, columns)
        writer.writeheader()
        for trial in study.get_trials(deepcopy=False):
            if trial.state == TrialState.RUNNING:
                continue
            # A pruned trial shows its last validation score.
            last = max(trial.intermediate_values, default=None)
            value = trial.value if trial.state == TrialState.COMPLETE else \
                trial.intermediate_values.get(last)  # fmt: skip
            writer.writerow({
                "trial": trial.number, "state": trial.state.name.lower(),
                "model": trial.params.get("model"), "settings": trial.user_attrs.get("settings"),
                objective: value, **{key: trial.user_attrs.get(key) for key in TABLE_COLUMNS[4:]},
            })  # fmt: skip


def write_plots(out: Path, study: optuna.Study) -> None:
    """Optuna's optimisation history and, from two finished trials on, parameter importances."""
    figures = optuna.visualization.matplotlib
    plots = [("optimization_history.png", figures.plot_optimization_history)]
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= 2:
        plots.append(("param_importances.png", figures.plot_param_importances))
    for name, plot in plots:
        with warnings.catch_warnings():
            # Importances warn about settings tried only once, expected in short sweeps, and
            # both plots are marked experimental.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", ExperimentalWarning)
            axes = plot(study)
        axes.figure.set_size_inches(9, 5)
        axes.figure.tight_layout()
        with atomic.atomic_path(out / name) as partial:
            axes.figure.savefig(partial, dpi=100, format="png")
        plt.close(axes.figure)


def _copy_best(out: Path, folder: Path) -> None:
    """Copy the best trial's run to `out/best`, replacing an earlier sweep's best once the copy
    is complete and synced."""
    staging = atomic.temporary_path(out / "best")
    shutil.copytree(folder, staging)
    try:
        shutil.rmtree(out / "best", ignore_errors=True)
        atomic.publish_folder(staging, out / "best")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def sweep(
    cache: Path,
    out: Path,
    base: TrainConfig,
    space: dict[str, dict[str, list]],
    trials: int = DEFAULT_TRIALS,
    objective: str = DEFAULT_OBJECTIVE,
    jobs: int = DEFAULT_JOBS,
    index: Path | None = None,
    storage: str | None = None,
) -> dict[str, Any]:
    """Run the study in `out` (or at `storage`) until it holds `trials` finished trials; copy
    the best to `out/best`, score it on test, and return its metrics."""
    if objective not in OBJECTIVES:
        raise SweepError(f"objective must be one of {sorted(OBJECTIVES)}, got {objective!r}")
    if trials < 1 or jobs < 1:
        raise SweepError(f"trials and jobs must be at least 1, got {trials} and {jobs}")
    if base.folds != 1:
        raise SweepError(f"a sweep scores trials on one split; folds must be 1, got {base.folds}")
    if objective == "frame_auc" and set(space) != {"frame-dense"}:
        raise SweepError("frame_auc scores frame-level models only: search frame-dense alone")
    # The split is the same for every trial: draw it once here, so an impossible split fails
    # before any trial and its warnings show once.
    corpus = load_corpus(cache)
    make_splits(corpus, base, index)
    url = storage or _default_url(out)
    identity = _identity(cache, corpus.encoder.fingerprint, base, space, objective, index)
    study = _start_or_resume(out, url, identity, base.seed)
    for failed in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        # An interrupted trial is never resumed: what it left would only mislead.
        shutil.rmtree(failed.user_attrs.get("folder", out / "none"), ignore_errors=True)
    pending = max(trials - _done(study), 0)
    print(f"sweep of {trials} trials in {out}: {trials - pending} already finished, "
          f"{pending} to run, {min(jobs, pending)} worker(s)")  # fmt: skip
    arguments = {"cache": cache, "out": out, "url": url, "base": base, "space": space,
                 "objective": objective, "index": index}  # fmt: skip
    if pending:
        _run_workers(arguments, pending, jobs)
    study = open_study(url, base.seed, objective)
    write_table(out, study, objective)
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise SweepError(f"no trial of the sweep in {out} finished; see {out / 'trials.csv'}")
    write_plots(out, study)
    best = study.best_trial
    folder = Path(best.user_attrs["folder"])
    if not folder.is_dir():
        raise SweepError(f"the best trial, {best.number}, ran on {best.user_attrs['host']}: its "
                         f"run folder {folder} is there")  # fmt: skip
    _copy_best(out, folder)
    # The one test score of the sweep: the chosen trial's, after every choice is made.
    metrics = evaluate_run(out / "best", corpus, test=True)
    return {"trial": best.number, "settings": best.user_attrs["settings"], "metrics": metrics}
