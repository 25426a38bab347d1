"""How every Keras family trains: early stopping and checkpoint on validation, history, timing.

The model kept is the best epoch by validation AUC (the example's choice), restored at the end
and saved as model.keras; history.csv has every epoch. `on_epoch(epoch, model)`, if given, is
called after each epoch, e.g. for a sweep to report the validation score to its pruner.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from brogue.inference import run_folder
from brogue.train.config import ConfigError, TrainConfig

MONITOR = "val_auc"  # The example judged models by AUC; early stopping and checkpoint agree.
EpochHook = Callable[[int, keras.Model], None]


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of each epoch, validation included."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


class _EachEpoch(keras.callbacks.Callback):
    def __init__(self, hook: EpochHook) -> None:
        super().__init__()
        self.hook = hook

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.hook(epoch, self.model)


def _callbacks(run: Path, config: TrainConfig, timer: EpochTimer, on_epoch: EpochHook | None
               ) -> list:  # fmt: skip
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor=MONITOR, mode="max", patience=config.patience, restore_best_weights=True
        ),
        keras.callbacks.ModelCheckpoint(
            run / run_folder.MODEL, monitor=MONITOR, mode="max", save_best_only=True
        ),
        keras.callbacks.CSVLogger(run / run_folder.HISTORY),
        timer,
    ]
    if on_epoch is not None:
        callbacks.append(_EachEpoch(on_epoch))
    if config.tensorboard:
        # TensorFlow no longer pulls in the tensorboard package, and Keras needs it to log.
        if importlib.util.find_spec("tensorboard") is None:
            warnings.warn("no TensorBoard logs: pip install 'brogue[tensorboard]', "
                          "or --no-tensorboard", stacklevel=2)
        else:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=run / "logs"))
    return callbacks


def train_keras(
    model: keras.Model,
    train: keras.utils.PyDataset,
    valid: keras.utils.PyDataset,
    config: TrainConfig,
    run: Path,
    verbose: int,
    on_epoch: EpochHook | None,
) -> dict[str, Any]:
    """Fit `model` (seeded before it was built) and return the epoch facts for run.json."""
    timer = EpochTimer()
    # The feeds shuffle and weight examples themselves: Keras shuffling batch order on top would
    # make every batch hit a different window, so shuffle=False and no class_weight here.
    history = model.fit(
        train, validation_data=valid, epochs=config.epochs, shuffle=False,
        callbacks=_callbacks(run, config, timer, on_epoch), verbose=verbose,
    )  # fmt: skip
    return {
        "epochs_run": len(history.epoch),
        "best_epoch": int(np.argmax(history.history[MONITOR])) + 1,
        "seconds_per_epoch": float(np.mean(timer.seconds)),
    }


def compile_model(model: keras.Model, config: TrainConfig) -> keras.Model:
    """The example's optimizer setting, cross-entropy and metrics (AUC is what is monitored)."""
    try:
        optimizer = keras.optimizers.get(
            {"class_name": config.optimizer, "config": {"learning_rate": config.learning_rate}}
        )
    except ValueError as error:
        raise ConfigError(f"optimizer {config.optimizer!r} is not a Keras optimizer") from error
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
    )
    return model
