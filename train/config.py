"""Every setting of a training run in one frozen dataclass, read from JSON and flags.

The defaults are the Keras example's model and fit, except the split: the example split files at
random, which leaks speakers into validation, so `split="speaker"` is the default here (train,
valid and test speakers) and `split="random"` reproduces the example. `model` names the family
(`train.families`); a family may bring its own defaults (`FAMILY_DEFAULTS`) for settings the
example's learning rate and batch size do not suit.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brogue import atomic
from brogue.errors import BrogueError

# The example's hidden layers as (width, dropout) rows, found with KerasTuner by its author.
EXAMPLE_LAYERS: tuple[tuple[int, float], ...] = ((256, 0.15), (384, 0.2), (192, 0.25), (384, 0.2))

SPLITS = ("speaker", "random")
CLASS_WEIGHTS = ("example", "balanced")
# The model families (train.families); "frame-dense" is the example's head.
MODELS = ("frame-dense", "clip-linear", "clip-attention")
# The calibration maps fitted on the valid clips (train.calibration).
CALIBRATIONS = ("temperature", "vector")
CHOICES = {"split": SPLITS, "class_weight": CLASS_WEIGHTS, "model": MODELS,
           "calibration": CALIBRATIONS}
# Settings a family needs other than the example's, used unless the config or a flag sets them:
# the attention model learns clips, 16 to a batch, and at the example's 2e-5 barely moves.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "clip-attention": {"learning_rate": 1e-3, "batch_size": 16},
}

# The settings only some families read, for `fit --help`'s groups; every other setting is read
# by every family (the split, the seed, class weights, the RAM budget) or by the families that
# train by epochs in Keras (`EPOCH_SETTINGS`: frame-dense and clip-attention, not clip-linear).
FAMILY_SETTINGS: dict[str, tuple[str, ...]] = {
    "frame-dense": ("layers", "block_frames"),
    "clip-linear": ("linear_c",),
    "clip-attention": ("attention_width", "attention_dropout"),
}
EPOCH_SETTINGS = ("optimizer", "learning_rate", "batch_size", "epochs", "patience", "tensorboard")


class ConfigError(BrogueError):
    """A setting has the wrong type or an impossible value; the message is one line."""


@dataclass(frozen=True)
class TrainConfig:
    """One run's settings; saved as config.json, read back by `load_config`."""

    model: str = "frame-dense"
    layers: tuple[tuple[int, float], ...] = EXAMPLE_LAYERS  # frame-dense
    linear_c: float = 1.0  # clip-linear: inverse L2 strength, scikit-learn's C
    attention_width: int = 128  # clip-attention: the frame projection's width
    attention_dropout: float = 0.2  # clip-attention: dropout on the projection and the pooled
    optimizer: str = "adam"
    learning_rate: float = 1.9644e-5
    batch_size: int = 64  # frames for frame-dense, clips for clip-attention
    epochs: int = 100
    patience: int = 10
    split: str = "speaker"
    valid_ratio: float = 0.1
    test_ratio: float = 0.1
    folds: int = 1  # > 1: nested speaker folds, each fold's test speakers held out of it all
    class_weight: str = "example"
    calibration: str = "temperature"  # the map fitted on the valid clips after training
    seed: int = 1337
    ram_budget_mb: float = 2048.0
    # Rows read from a shard in one go when streaming: large enough that HDF5 call overhead
    # vanishes, small enough that many blocks from many shards mix in one shuffle window.
    block_frames: int = 1024
    tensorboard: bool = True

    def __post_init__(self) -> None:
        _check(bool(self.layers), "layers", "at least one (width, dropout) row", self.layers)
        for width, dropout in self.layers:
            _check(width >= 1, "layers", "widths >= 1", self.layers)
            _check(0.0 <= dropout < 1.0, "layers", "dropouts in [0, 1)", self.layers)
        _check(self.learning_rate > 0, "learning_rate", "> 0", self.learning_rate)
        _check(self.batch_size >= 1, "batch_size", ">= 1", self.batch_size)
        _check(self.epochs >= 1, "epochs", ">= 1", self.epochs)
        _check(self.patience >= 1, "patience", ">= 1", self.patience)
        for name, allowed in CHOICES.items():
            _check(getattr(self, name) in allowed, name, f"one of {allowed}", getattr(self, name))
        _check(self.linear_c > 0, "linear_c", "> 0", self.linear_c)
        _check(self.attention_width >= 1, "attention_width", ">= 1", self.attention_width)
        _check(0.0 <= self.attention_dropout < 1.0, "attention_dropout", "in [0, 1)",
               self.attention_dropout)  # fmt: skip
        _check(0.0 < self.valid_ratio < 1.0, "valid_ratio", "in (0, 1)", self.valid_ratio)
        _check(0.0 < self.test_ratio < 1.0, "test_ratio", "in (0, 1)", self.test_ratio)
        _check(self.folds >= 1, "folds", ">= 1", self.folds)
        _check(
            self.folds == 1 or self.split == "speaker", "folds", "1 with split=random", self.folds
        )
        _check(self.ram_budget_mb > 0, "ram_budget_mb", "> 0", self.ram_budget_mb)
        _check(self.block_frames >= 1, "block_frames", ">= 1", self.block_frames)

    @property
    def ram_budget_bytes(self) -> int:
        return int(self.ram_budget_mb * 2**20)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["layers"] = [list(row) for row in self.layers]
        return values


def _check(ok: bool, name: str, expected: str, received: object) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {expected}, got {received!r}")


def make_config(values: dict[str, Any]) -> TrainConfig:
    """Build a config from plain values (JSON or flags), refusing names it does not know."""
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    values = {**FAMILY_DEFAULTS.get(values.get("model", ""), {}), **values}
    if "layers" in values:
        values["layers"] = tuple(
            (int(width), float(dropout)) for width, dropout in values["layers"]
        )
    try:
        return TrainConfig(**values)
    except TypeError as error:  # A comparison against the wrong type, e.g. epochs="ten".
        raise ConfigError(f"a setting has the wrong type: {error}") from error


def parse_layers(text: str) -> tuple[tuple[int, float], ...]:
    """Read `256:0.15,384:0.2` into ((256, 0.15), (384, 0.2))."""
    try:
        return tuple(
            (int(width), float(dropout))
            for width, dropout in (row.split(":") for row in text.split(","))
        )
    except ValueError as error:
        raise ConfigError(f"layers must look like 256:0.15,384:0.2, got {text!r}") from error


def load_config(path: Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """The config in JSON file `path` (if any), with `overrides` (set flags) on top."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"cannot read config {path}: {error}") from error
        if not isinstance(values, dict):
            raise ConfigError(f"config {path} must hold a JSON object")
    return make_config({**values, **overrides})


def save_config(config: TrainConfig, path: Path) -> None:
    atomic.write_text(path, json.dumps(config.to_dict(), indent=2) + "\n")


# --- sweeps: what a sweep maximises, and how many trials it runs ---

# objective name → where it sits in a run's metrics["valid"]. Only frame-dense has frame scores.
OBJECTIVES = {
    "clip_balanced_accuracy": ("clip", "balanced_accuracy"),
    "frame_auc": ("frame", "auc"),
    "log_loss": ("clip", "log_loss"),  # of the calibrated clip probabilities
}
MINIMISED = {"log_loss"}  # the objectives a sweep makes small; it maximises the others
DEFAULT_OBJECTIVE = "clip_balanced_accuracy"
DEFAULT_TRIALS = 20
# One trial at a time. On the 2-core dev VM (shared, so noisy), 4 trials of 10 epochs on 12,000
# synthetic frames took 103 s one at a time and 131 s two at a time (0.79x; 1.05x and 1.36x in
# two earlier runs; with one TensorFlow thread per process, 172 s against 148 s). KerasTuner runs
# trials one after another in one process, as jobs=1 does: 67 s against 72 s for 4 shorter
# trials, without run folders or plots, and it needs keras-tuner and tensorboard. More jobs may pay
# on machines with more cores (not measured here); `make bench-sweep` measures it.
# These were measured with joblib workers, before the sweep moved to Optuna worker processes
# on one study; not measured again since.
DEFAULT_JOBS = 1
