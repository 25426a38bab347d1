"""The server's one way into brogue's inference (`brogue.train.predict`, `brogue.extract.audio`).

Everything the server knows of runs, engines, decoding and predictions passes through here, so
that a change to those modules is met in one place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brogue.errors import BrogueError
from brogue.extract.audio import SAMPLE_RATE, AudioError, load_audio, probe, resampled_length
from brogue.extract.frames import LOG_MEL_HOP_S, LOG_MEL_WINDOW_S
from brogue.train.evidence import RunEvidence
from brogue.train.predict import (
    FilePrediction,
    PredictError,
    load_encoders,
    load_run,
    predict_waveforms,
)

__all__ = ["LOG_MEL_HOP_S", "LOG_MEL_WINDOW_S", "SAMPLE_RATE", "AudioError", "FilePrediction",
           "Model", "PredictError", "TooLong", "check_run", "decode"]


class TooLong(BrogueError):
    """Audio longer than the server's duration limit."""


def decode(path: Path, name: str, max_seconds: float) -> np.ndarray:
    """The 16 kHz mono waveform of the audio file `path`, refused before decoding when its
    header says it is longer than `max_seconds`; errors name `name`, never `path`."""
    try:
        frames, sample_rate = probe(path)
        seconds = resampled_length(frames, sample_rate) / SAMPLE_RATE
        if seconds > max_seconds:
            raise TooLong(f"{name}: {seconds:.1f} s of audio is over this server's limit of "
                          f"{max_seconds:g} s")  # fmt: skip
        return load_audio(path)
    except AudioError as error:  # libsndfile's reasons can quote the path
        raise AudioError(name, error.reason.replace(str(path), name)) from None


def test_score(folder: Path) -> dict[str, Any] | None:
    """The run's clip-level test balanced accuracy with its 95% speaker-bootstrap interval and
    the test side's speakers, as `evaluate` wrote them; None for a run never tested."""
    path = folder / "metrics.json"
    test = json.loads(path.read_text()).get("test") if path.is_file() else None
    if not test:
        return None
    clip = test["clip"]
    return {"metric": "balanced_accuracy", "level": "clip", "value": clip["balanced_accuracy"],
            "interval": clip.get("interval"), "speakers": test.get("speakers")}  # fmt: skip


def check_run(folder: Path) -> None:
    """Raise PredictError unless `folder` holds a run whose head loads."""
    load_run(folder)


@dataclass(frozen=True)
class Model:
    """A run's head and its encoder, loaded once per worker; only the batcher's thread calls
    `predict`."""

    run: Any  # brogue.train.predict.TrainedRun
    engines: list[Any]  # brogue.extract.engine.Encoder, one per cache of the run (fused: several)
    description: dict[str, Any]
    evidence: RunEvidence  # what the run's test side says of an answer; its training clips

    @classmethod
    def load(cls, folder: Path) -> Model:
        run = load_run(folder)
        engines = load_encoders(run)
        engine = engines[0]
        evidence = RunEvidence.load(folder, len(run.accents))
        description = {
            "run": folder.resolve().name,
            "family": run.family,
            "classes": run.classes,
            "accents": run.accents,
            "encoder": {"name": engine.name, "fingerprint": engine.fingerprint,
                        "runtime": engine.runtime, "precision": engine.precision},
            "cache": {"fingerprint": run.encoder.fingerprint, "precision": run.encoder.precision},
            "test": test_score(folder),
            "beats_chance": evidence.beats_chance,
        }  # fmt: skip
        if len(engines) > 1:
            description["fused"] = [other.name for other in engines[1:]]
        return cls(run, engines, description, evidence)

    def predict(self, clips: Sequence[tuple[str, np.ndarray]]) -> list[FilePrediction]:
        """The prediction of every (name, 16 kHz waveform), in order, in as few engine and
        head calls as the engine likes."""
        return list(predict_waveforms(self.run, self.engines, clips))
