"""`sweep`: a random search over the dense head, each trial a `fit` on the same cached shards.

The space (depth, widths, dropout, learning rate, batch size) is a small JSON file, by default
`sweep_space.json` beside this module: `depth` and `dropout` are [low, high] ranges, each layer
drawing its own width and dropout; `learning_rate` is a [low, high] range drawn log-uniformly;
`widths` and `batch_sizes` list the choices. Every other setting comes from the base config, as
for `fit`, so every trial uses the same split and seed and differs only in what is searched.

Trial k's settings depend only on the space, the seed and k, so an interrupted sweep resumes by
skipping the trials that have a result and rerunning the rest, and `--trials` can grow a sweep.
Trials never touch YAMNet: each one reads the shards, as `fit` does. With `jobs` > 1 trials run
in that many worker processes (joblib); the measurements behind the default are at `DEFAULT_JOBS`.

A sweep folder holds sweep.json (what was searched, to refuse resuming another sweep), trials/
(one run folder per trial, as `fit` writes it, plus trial.json once it has finished),
trials.csv (every finished trial's settings, objective, epochs and seconds), objective.png and
best/ (a copy of the best trial's run folder).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import matplotlib

matplotlib.use("Agg")  # Sweeps write files; they never open windows.

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from brogue import atomic
from brogue.errors import BrogueError
from brogue.train.config import (  # noqa: E402
    DEFAULT_JOBS,
    DEFAULT_OBJECTIVE,
    DEFAULT_TRIALS,
    OBJECTIVES,
    TrainConfig,
)
from brogue.train.corpus import load_corpus  # noqa: E402
from brogue.train.fit import fit  # noqa: E402
from brogue.train.splits import SplitWarning, make_splits  # noqa: E402

DEFAULT_SPACE = Path(__file__).with_name("sweep_space.json")
SEARCHED = ("layers", "learning_rate", "batch_size")  # the base config's values go unused
TABLE_COLUMNS = (
    "trial",
    "layers",
    "learning_rate",
    "batch_size",
    "epochs",
    "best_epoch",
    "seconds",
)


class SweepError(BrogueError):
    """A sweep cannot start or resume; the message is one line."""


@dataclass(frozen=True)
class SearchSpace:
    depth: tuple[int, int]
    widths: tuple[int, ...]
    dropout: tuple[float, float]
    learning_rate: tuple[float, float]
    batch_sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("depth", "dropout", "learning_rate"):
            bounds = getattr(self, name)
            _check(len(bounds) == 2 and bounds[0] <= bounds[1], name, "[low, high]", bounds)
        _check(self.depth[0] >= 1, "depth", "at least 1", self.depth)
        _check(
            0.0 <= self.dropout[0] and self.dropout[1] < 1.0,
            "dropout",
            "within [0, 1)",
            self.dropout,
        )
        _check(self.learning_rate[0] > 0, "learning_rate", "> 0", self.learning_rate)
        for name in ("widths", "batch_sizes"):
            values = getattr(self, name)
            _check(bool(values) and min(values) >= 1, name, "a list of integers >= 1", values)

    def to_dict(self) -> dict[str, list]:
        return {name: list(value) for name, value in dataclasses.asdict(self).items()}


def _check(ok: bool, name: str, expected: str, received: object) -> None:
    if not ok:
        raise SweepError(f"search space: {name} must be {expected}, got {received!r}")


def load_space(path: Path) -> SearchSpace:
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SweepError(f"cannot read search space {path}: {error}") from error
    names = {field.name for field in dataclasses.fields(SearchSpace)}
    if not isinstance(values, dict) or set(values) != names:
        raise SweepError(
            f"search space {path} must be a JSON object with exactly the keys "
            f"{', '.join(sorted(names))}"
        )
    try:
        return SearchSpace(**{name: tuple(value) for name, value in values.items()})
    except TypeError as error:  # a number where a list belongs, or a list of strings
        raise SweepError(f"search space {path}: {error}") from error


def trial_config(space: SearchSpace, base: TrainConfig, trial: int) -> TrainConfig:
    """Trial `trial`'s settings: the base config with the head drawn from `space`."""
    rng = np.random.default_rng([base.seed, trial])
    depth = int(rng.integers(space.depth[0], space.depth[1] + 1))
    layers = tuple(
        (int(rng.choice(space.widths)), round(float(rng.uniform(*space.dropout)), 2))
        for _ in range(depth)
    )
    log_rate = rng.uniform(math.log(space.learning_rate[0]), math.log(space.learning_rate[1]))
    return dataclasses.replace(
        base,
        layers=layers,
        learning_rate=float(f"{math.exp(log_rate):.3g}"),  # 3 digits keep the table readable
        batch_size=int(rng.choice(space.batch_sizes)),
    )


def run_trial(
    cache: Path, folder: Path, trial: int, config: TrainConfig, index: Path | None, objective: str
) -> dict[str, Any]:
    """Fit trial `trial` into `folder` and record its result there as trial.json."""
    level, name = OBJECTIVES[objective]
    started = time.perf_counter()
    # The parent already showed the split's warnings and prints one line per trial.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", SplitWarning)
        metrics = fit(cache, folder, config, index=index, verbose=0)
    record = {
        "trial": trial,
        "layers": ",".join(f"{width}:{dropout:g}" for width, dropout in config.layers),
        "learning_rate": config.learning_rate,
        "batch_size": config.batch_size,
        objective: metrics["valid"][level][name],
        "epochs": metrics["epochs_run"],
        "best_epoch": metrics["best_epoch"],
        "seconds": round(time.perf_counter() - started, 2),
    }
    _write_json(folder / "trial.json", record)
    return record


def _write_json(path: Path, value: Any) -> None:
    """Write atomically: a trial.json that exists is a finished trial."""
    atomic.write_text(path, json.dumps(value, indent=1) + "\n")


def _trial_folder(out: Path, trial: int) -> Path:
    return out / "trials" / f"trial-{trial:03d}"


def _identity(
    cache: Path,
    fingerprint: str,
    base: TrainConfig,
    space: SearchSpace,
    objective: str,
    index: Path | None,
) -> dict[str, Any]:
    """What makes two sweeps the same sweep; the trial count may grow."""
    return {
        "cache": str(cache.absolute()),
        "fingerprint": fingerprint,
        "objective": objective,
        "index": str(index) if index else None,
        "base": {k: v for k, v in base.to_dict().items() if k not in SEARCHED},
        "space": space.to_dict(),
    }


def _start_or_resume(out: Path, identity: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Check `out` holds this sweep (or nothing) and return the finished trials by number."""
    saved = out / "sweep.json"
    if saved.is_file():
        if json.loads(saved.read_text()) != identity:
            raise SweepError(
                f"{out} holds a sweep with other settings, cache or space; choose a new --out"
            )
    elif out.exists() and any(out.iterdir()):
        raise SweepError(f"{out} already holds files that are not a sweep; choose a new --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        _write_json(saved, identity)
    finished = {}
    for result in sorted(out.glob("trials/trial-*/trial.json")):
        record = json.loads(result.read_text())
        finished[record["trial"]] = record
    return finished


def _run_pending(
    pending: Sequence[tuple[int, TrainConfig]],
    cache: Path,
    out: Path,
    index: Path | None,
    objective: str,
    jobs: int,
) -> Iterator[dict[str, Any]]:
    """Each pending trial's record, in the order they finish."""
    for trial, _ in pending:
        # A folder without trial.json is what an interrupted trial left: start it afresh.
        shutil.rmtree(_trial_folder(out, trial), ignore_errors=True)
    tasks = (
        joblib.delayed(run_trial)(cache, _trial_folder(out, trial), trial, config, index, objective)
        for trial, config in pending
    )
    # n_jobs=1 runs in this process; more start worker processes, each loading Keras once.
    yield from joblib.Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks)


def write_table(out: Path, records: Sequence[dict[str, Any]], objective: str) -> None:
    columns = [*TABLE_COLUMNS[:4], objective, *TABLE_COLUMNS[4:]]
    with atomic.atomic_path(out / "trials.csv") as partial, open(partial, "w", newline="") as table:
        writer = csv.DictWriter(table, columns)
        writer.writeheader()
        writer.writerows(sorted(records, key=lambda record: record["trial"]))


def plot_objective(records: Sequence[dict[str, Any]], objective: str, path: Path) -> None:
    """Each trial's objective in trial order, and the best so far as a step line."""
    ordered = sorted(records, key=lambda record: record["trial"])
    trials = [record["trial"] for record in ordered]
    values = np.array([record[objective] for record in ordered])
    fig, axis = plt.subplots(figsize=(8, 4.5))
    axis.plot(trials, values, "o", label="trial")
    axis.step(trials, np.maximum.accumulate(values), where="post", label="best so far")
    axis.set_xlabel("Trial")
    axis.set_ylabel(f"validation {objective.replace('_', ' ')}")
    axis.legend()
    axis.grid(True)
    fig.tight_layout()
    with atomic.atomic_path(path) as partial:
        fig.savefig(partial, dpi=100)
    plt.close(fig)


def _copy_best(out: Path, best: dict[str, Any]) -> None:
    staging = out / "best.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(_trial_folder(out, best["trial"]), staging)
    shutil.rmtree(out / "best", ignore_errors=True)
    staging.replace(out / "best")


def sweep(
    cache: Path,
    out: Path,
    base: TrainConfig,
    space: SearchSpace,
    trials: int = DEFAULT_TRIALS,
    objective: str = DEFAULT_OBJECTIVE,
    jobs: int = DEFAULT_JOBS,
    index: Path | None = None,
) -> list[dict[str, Any]]:
    """Run trials 0 .. `trials`-1 of the search that are not yet finished in `out`.

    Returns every finished trial's record, best first.
    """
    if objective not in OBJECTIVES:
        raise SweepError(f"objective must be one of {sorted(OBJECTIVES)}, got {objective!r}")
    if trials < 1 or jobs < 1:
        raise SweepError(f"trials and jobs must be at least 1, got {trials} and {jobs}")
    if base.folds != 1:
        raise SweepError(f"a sweep scores trials on one split; folds must be 1, got {base.folds}")
    # The split is the same for every trial: draw it once here, so an impossible split fails
    # before any trial and its warnings show once.
    corpus = load_corpus(cache)
    make_splits(corpus, base, index)
    identity = _identity(cache, corpus.cache.fingerprint, base, space, objective, index)
    finished = _start_or_resume(out, identity)
    pending = [(k, trial_config(space, base, k)) for k in range(trials) if k not in finished]
    print(
        f"sweep of {trials} trials in {out}: {len(finished)} already finished, "
        f"{len(pending)} to run, {jobs} at a time"
    )
    for record in _run_pending(pending, cache, out, index, objective, jobs):
        finished[record["trial"]] = record
        best = max(finished.values(), key=lambda r: r[objective])
        print(
            f"trial {record['trial']:3d}: {objective} {record[objective]:.4f} in "
            f"{record['seconds']:.1f} s ({record['epochs']} epochs; layers {record['layers']}, "
            f"lr {record['learning_rate']:g}, batch {record['batch_size']}); "
            f"best so far trial {best['trial']} with {best[objective]:.4f}"
        )
        write_table(out, list(finished.values()), objective)
    records = sorted(finished.values(), key=lambda r: r[objective], reverse=True)
    write_table(out, records, objective)
    plot_objective(records, objective, out / "objective.png")
    _copy_best(out, records[0])
    return records
