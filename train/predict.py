"""`predict`: the accent of new recordings, by the YAMNet and the head a run was trained with.

A file's answer is the clip rule that `evaluate` scores: the head's frame probabilities are
averaged over the file's speech frames (YAMNet's top class is Speech), or over all its frames
when it has none, and the accent is the most probable accent of that mean ("Not a speech" never
is the answer). Files are decoded by the extractor's worker, YAMNet's engine takes them as a
stream (batching across files as it likes), and the head runs once per group of files. YAMNet
runs at the precision of the cache the run was trained on (fp32 for runs that do not say).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from brogue.errors import BrogueError
from brogue.extract.corpus import ClipSource
from brogue.extract.decode import DEFAULT_WORKERS, Prepared, prepared_in_order
from brogue.extract.yamnet.engines import Engine, Frames, NativeEngine
from brogue.extract.yamnet.params import SPEECH_CLASS
from brogue.train.metrics import pool

# Files whose frames go through the head together: one call for many short files, while the
# probabilities held stay small.
FILES_PER_HEAD_CALL = 64


class PredictError(BrogueError):
    """A run cannot predict, or some files could not be read; the message is one line."""


@dataclass(frozen=True)
class TrainedRun:
    """What inference needs from a run folder: the head, its classes and its YAMNet."""

    folder: Path
    classes: list[str]  # the accents, then "Not a speech"
    head: keras.Model
    handle: str
    fingerprint: str
    precision: str  # of the cache's embeddings: YAMNet must run at it again

    @property
    def accents(self) -> list[str]:
        return self.classes[:-1]


def load_run(folder: Path) -> TrainedRun:
    """The run in `folder`, with the YAMNet handle and fingerprint it was trained on."""
    facts_path, model_path = folder / "run.json", folder / "model.keras"
    if not facts_path.is_file() or not model_path.is_file():
        raise PredictError(f"{folder} is not a finished run folder (no run.json or model.keras)")
    facts = json.loads(facts_path.read_text())
    cache = facts.get("cache", {})
    if "handle" not in cache or "fingerprint" not in cache:
        raise PredictError(f"{facts_path} does not say which YAMNet made its cache; fit it again")
    head = keras.models.load_model(model_path)
    return TrainedRun(folder, facts["classes"], head, cache["handle"], cache["fingerprint"],
                      cache.get("precision", "fp32"))


def load_yamnet(run: TrainedRun, runtime: str = "auto") -> Engine:
    """The run's YAMNet at the run's precision, refused unless its weights are the ones the
    run was trained on."""
    try:
        engine = NativeEngine(run.handle, runtime, run.precision)
    except BrogueError as error:  # weights that cannot load, a precision this CPU lacks
        raise PredictError(f"{run.folder}: {error}") from None
    if engine.fingerprint != run.fingerprint:
        raise PredictError(
            f"{run.folder} was trained on embeddings of YAMNet weights {run.fingerprint}, "
            f"but {run.handle} now holds weights {engine.fingerprint}"
        )
    return engine


@dataclass(frozen=True)
class FilePrediction:
    number: int  # the file's position among those asked for
    path: str
    seconds: float  # duration of the audio
    classes: list[str]
    probabilities: np.ndarray  # [C]: the frame probabilities pooled over the speech frames
    frame_probabilities: np.ndarray  # [N, C]
    speech: np.ndarray  # [N] bool: YAMNet's top class is Speech
    frame_hop_seconds: float  # frame k covers k·hop .. k·hop + the patch window
    log_mel: np.ndarray  # [M, 64]: the front end's output that YAMNet classified

    @property
    def accent(self) -> str:
        accents = len(self.classes) - 1
        return self.classes[int(np.argmax(self.probabilities[:accents]))]

    @property
    def pooled_over_speech(self) -> bool:
        return bool(self.speech.any())

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "accent": self.accent,
            "probabilities": dict(zip(self.classes, self.probabilities.tolist(), strict=True)),
            "frames": len(self.speech),
            "non_speech_frames": int((~self.speech).sum()),
            "pooled_over": "speech frames" if self.pooled_over_speech else "all frames",
            "seconds": self.seconds,
            "frame_times": (np.arange(len(self.speech)) * self.frame_hop_seconds).tolist(),
            "frame_speech": self.speech.tolist(),
            "frame_probabilities": {
                name: column.tolist()
                for name, column in zip(self.classes, self.frame_probabilities.T, strict=True)
            },
        }

    def describe(self) -> str:
        ranked = np.argsort(self.probabilities)[::-1]
        shares = ", ".join(f"{self.classes[i]} {self.probabilities[i]:.2f}" for i in ranked)
        non_speech = int((~self.speech).sum())
        note = "" if self.pooled_over_speech else " (no speech frame: pooled over all frames)"
        return (
            f"{self.path}: {self.accent}; {shares}; {len(self.speech)} frames, "
            f"{non_speech} non-speech{note}"
        )


def _readable(prepared: Iterator[Prepared], failures: list[str]) -> Iterator[Prepared]:
    """The decoded files; each one that failed is reported on stderr at once and noted."""
    for clip in prepared:
        if clip.waveform is None:
            print(f"error: {clip.failure}", file=sys.stderr)
            failures.append(clip.failure)
            continue
        yield clip


def _head_groups(
    computed: Iterator[tuple[Prepared, Frames]],
) -> Iterator[list[tuple[Prepared, Frames]]]:
    group = []
    for item in computed:
        group.append(item)
        if len(group) == FILES_PER_HEAD_CALL:
            yield group
            group = []
    if group:
        yield group


def predict_files(
    run: TrainedRun, engine: Engine, paths: Sequence[str | Path], failures: list[str]
) -> Iterator[FilePrediction]:
    """A prediction for every readable file, in the order given; unreadable files are reported
    on stderr as they are met and their messages appended to `failures`."""
    # Each file's position rides along in `extra`, which survives the trip through a worker.
    sources = [ClipSource(Path(path), "", "", {"number": str(n)}) for n, path in enumerate(paths)]
    prepared = prepared_in_order(sources, DEFAULT_WORKERS, frozenset())
    clips = ((clip, clip.waveform) for clip in _readable(prepared, failures))
    for group in _head_groups(engine.stream(clips)):
        counts = [len(frames.scores) for _, frames in group]
        embeddings = np.concatenate([frames.embeddings for _, frames in group])
        probs = np.asarray(run.head.predict_on_batch(embeddings))
        speech = np.concatenate([frames.scores.argmax(axis=1) == SPEECH_CLASS
                                 for _, frames in group])
        owners = np.repeat(np.arange(len(group)), counts)
        pooled, _ = pool(probs, owners, speech, len(group))
        bounds = np.cumsum(counts)[:-1]
        rows = zip(group, pooled, np.split(probs, bounds), np.split(speech, bounds), strict=True)
        for (clip, frames), file_probs, frame_probs, frame_speech in rows:
            yield FilePrediction(
                number=int(clip.source.extra["number"]),
                path=str(clip.source.path),
                seconds=clip.seconds,
                classes=run.classes,
                probabilities=file_probs,
                frame_probabilities=frame_probs,
                speech=frame_speech,
                frame_hop_seconds=engine.params.patch_hop_seconds,
                log_mel=frames.log_mel,
            )
