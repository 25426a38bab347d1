"""A trained run loaded for inference: its serving head, its classes and its encoders.

model.keras loads here with every custom layer it may hold registered (`inference.pooling`),
so loading a run needs nothing of `train/`. The serving head is chosen by what the family's
model takes (`pooling.serving_head`) and ends in the calibration map run.json records
(`inference.calibration`), and each encoder is loaded at its cache's precision and
refused unless its weights are the ones the run was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from brogue.cache import EncoderRecord
from brogue.errors import BrogueError
from brogue.extract.engine import Encoder, EngineSpec

from . import run_folder
from .calibration import CalibrationMap
from .pooling import serving_head


class PredictError(BrogueError):
    """A run cannot predict; the message is one line."""


@dataclass(frozen=True)
class TrainedRun:
    """What inference needs from a run folder: the head, its classes and its encoders."""

    folder: Path
    classes: list[str]  # the accents, then "Not a speech"
    # [(embeddings [B, T, D], speech [B, T], present [B, T]) per encoder] -> (calibrated
    # probabilities [B, C], frame probabilities [B, T, C] or None where fused), for every
    # family: `pooling.serving_head`.
    head: keras.layers.Layer
    encoders: list[EncoderRecord]  # the producers of the caches the run was trained on
    facts: dict[str, Any]  # run.json

    @property
    def encoder(self) -> EncoderRecord:
        """The first cache's producer: the one of a run that is not fused."""
        return self.encoders[0]

    @property
    def accents(self) -> list[str]:
        return self.classes[:-1]

    @property
    def family(self) -> str:
        return run_folder.family(self.facts)


def load_model(folder: Path) -> keras.Model:
    """The family's model.keras of the run in `folder`, whatever the family."""
    return keras.models.load_model(folder / run_folder.MODEL)


def load_run(folder: Path) -> TrainedRun:
    """The run in `folder`, with the encoders its caches were made by."""
    run_folder.check_finished(folder)
    facts = run_folder.read_facts(folder)
    encoders = run_folder.encoder_records(folder, facts)
    classes = facts["classes"]
    calibration = CalibrationMap.from_json(run_folder.calibration(facts), len(classes) - 1)
    head = serving_head(load_model(folder), len(classes), calibration)
    return TrainedRun(folder, classes, head, encoders, facts)


def load_encoders(run: TrainedRun, runtime: str = "auto") -> list[Encoder]:
    """The run's encoders (one per cache it was trained on), each at its cache's precision and
    refused unless its weights are the ones the run was trained on."""
    return [_load_encoder(run, record, runtime) for record in run.encoders]


def _load_encoder(run: TrainedRun, record: EncoderRecord, runtime: str) -> Encoder:
    try:
        encoder = EngineSpec(record.name, record.handle, runtime, record.precision).load()
    except BrogueError as error:  # weights that cannot load, a precision this CPU lacks
        raise PredictError(f"{run.folder}: {error}") from None
    if encoder.fingerprint != record.fingerprint:
        raise PredictError(
            f"{run.folder} was trained on embeddings of {record.name} weights "
            f"{record.fingerprint}, but {record.handle} now holds weights {encoder.fingerprint}"
        )
    return encoder
