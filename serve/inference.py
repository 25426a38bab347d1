"""The server's way into brogue's inference (`brogue.inference`): guards, then the one entry.

A request's audio meets two guards before inference: its size (`upload.limited`, as it
arrives) and its duration, read from the file's header before anything is decoded (`decode`).
What passes is decoded here, on the server's decoding threads, and handed to the batcher as a
`Waveform`; the batcher's thread runs `brogue.inference.predict.predict` on a batch, which
cuts a long waveform into the blocks a file of it would be read in, and answers each clip with
its prediction or with why it has none (`Unreadable`), which the app maps to a status code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brogue.errors import BrogueError
from brogue.extract.audio import SAMPLE_RATE, AudioError, load_audio, probe, resampled_length
from brogue.extract.frames import LOG_MEL_HOP_S, LOG_MEL_WINDOW_S
from brogue.inference.evidence import RunEvidence
from brogue.inference.predict import FilePrediction, Unreadable, Waveform, predict
from brogue.inference.run_folder import test_score
from brogue.inference.trained_run import TrainedRun, load_encoders, load_run

__all__ = ["LOG_MEL_HOP_S", "LOG_MEL_WINDOW_S", "SAMPLE_RATE", "AudioError", "FilePrediction",
           "Model", "TooLong", "Unreadable", "check_run", "decode"]


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


def check_run(folder: Path) -> None:
    """Raise a BrogueError unless `folder` holds a run whose head loads."""
    load_run(folder)


@dataclass(frozen=True)
class Model:
    """A run's head and its encoders, loaded once per worker; only the batcher's thread calls
    `predict`."""

    run: TrainedRun
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

    def predict(self, clips: Sequence[tuple[str, np.ndarray]]
                ) -> list[FilePrediction | Unreadable]:  # fmt: skip
        """The answer to every (name, 16 kHz waveform), in order, in as few engine and head
        calls as the engine likes."""
        return list(predict(self.run, self.engines, [Waveform(*clip) for clip in clips]))
