"""`predict`: the accent of new recordings, by the encoder and the head a run was trained with.

A file's answer is the clip rule that `evaluate` scores, through the run's serving head
(`train.families`), whatever its family: the head pools the file's speech frames (the encoder's
speech mask), or all its frames when it has none, and the accent is the most probable accent
("Not a speech" never is the answer). Files reach their frames through extraction's one path
(`brogue.extract.frames`: decoded by its worker, a long one in blocks, batched across files by
the encoder, pieces joined), and the head runs once per group of files, padded to the longest.
The encoder runs at the precision of the cache the run was trained on. A fused run
(`train.fusion`) has an encoder per cache: each file goes through the one path once per encoder,
and the head takes every encoder's frames; its frame view is on the first encoder's grid.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from brogue.cache import EncoderRecord
from brogue.errors import BrogueError
from brogue.extract.engine import Encoder, EngineSpec
from brogue.extract.frames import FileFrames, decoded_files, numbered_sources, whole_files
from brogue.train.families import serving_head
from brogue.train.fusion import run_caches

# Files whose frames go through the head together: one call for many short files, while the
# probabilities held stay small.
FILES_PER_HEAD_CALL = 64
PADDED_FRAMES_PER_HEAD_CALL = 16_384  # 64 MB of float32 embeddings; a longer file goes alone


class PredictError(BrogueError):
    """A run cannot predict, or some files could not be read; the message is one line."""


@dataclass(frozen=True)
class TrainedRun:
    """What inference needs from a run folder: the head, its classes and its encoder."""

    folder: Path
    classes: list[str]  # the accents, then "Not a speech"
    # [(embeddings [B, T, D], speech [B, T], present [B, T]) per encoder] -> (probabilities
    # [B, C], frame probabilities [B, T, C]), for every family: `train.families.serving_head`.
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
        return _family(self.facts)


def _family(facts: dict[str, Any]) -> str:
    # Runs from before the model families were all the example's frame-dense head.
    return facts.get("model", "frame-dense")


def _record(cache: dict[str, Any], facts_path: Path) -> EncoderRecord:
    """The producer a cache section of run.json records."""
    if "encoder" in cache:
        return EncoderRecord.from_mapping(cache["encoder"])
    if "handle" in cache and "fingerprint" in cache:  # runs fitted on schema 2 caches
        return EncoderRecord("yamnet", cache["handle"], cache["fingerprint"], {}, "unknown",
                             cache.get("precision", "fp32"), 0.96, 0.48, 1024)  # fmt: skip
    raise PredictError(f"{facts_path} does not say which encoder made its cache; fit again")


def load_run(folder: Path) -> TrainedRun:
    """The run in `folder`, with the encoders its caches were made by."""
    facts_path, model_path = folder / "run.json", folder / "model.keras"
    if not facts_path.is_file() or not model_path.is_file():
        raise PredictError(f"{folder} is not a finished run folder (no run.json or model.keras)")
    facts = json.loads(facts_path.read_text())
    encoders = [_record(cache, facts_path) for cache in run_caches({"cache": {}, **facts})]
    head = serving_head(keras.models.load_model(model_path), _family(facts),
                        len(facts["classes"]), facts.get("calibration"))  # fmt: skip
    return TrainedRun(folder, facts["classes"], head, encoders, facts)


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


@dataclass(frozen=True)
class FilePrediction:
    number: int  # the file's position among those asked for
    path: str
    seconds: float  # duration of the audio
    classes: list[str]
    probabilities: np.ndarray  # [C]: the head's calibrated answer over the speech frames
    frame_probabilities: np.ndarray | None  # [N, C]: each frame alone; None for a fused run
    speech: np.ndarray  # [N] bool: the encoder's speech mask
    frame_hop_seconds: float  # frame k covers k·hop .. k·hop + window
    frame_window_seconds: float
    envelope: np.ndarray  # [R, 2]: the waveform's least and greatest sample every 10 ms
    log_mel: np.ndarray | None  # [M, 64]: the log-mel the encoder saw, where it has one

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
            "frame_probabilities": None if self.frame_probabilities is None else {
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


# One file's frames by each encoder of the run, in the run's order.
Streams = tuple[FileFrames, ...]


def _readable(files: Iterator[Streams], failures: list[str]) -> Iterator[Streams]:
    """The files that reached their frames by every encoder; each one that failed is reported
    on stderr at once and noted, once."""
    for streams in files:
        failed = [file.clip.failure for file in streams if file.frames is None]
        if failed:
            print(f"error: {failed[0]}", file=sys.stderr)
            failures.append(failed[0])
            continue
        yield streams


def _head_groups(files: Iterator[Streams]) -> Iterator[list[Streams]]:
    """Whole files in groups for the head, each group's padded frames within the budget: one
    long recording must not pad 63 short files to its length."""
    group: list[Streams] = []
    longest = 0
    for file in files:
        frames = max(len(stream.frames.speech) for stream in file)
        padded = (len(group) + 1) * max(longest, frames)
        if group and (len(group) == FILES_PER_HEAD_CALL or padded > PADDED_FRAMES_PER_HEAD_CALL):
            yield group
            group, longest = [], 0
        group.append(file)
        longest = max(longest, frames)
    if group:
        yield group


def _padded(group: list[FileFrames], width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One encoder's (embeddings, speech, present) of a group's files, padded to the longest."""
    counts = [len(file.frames.speech) for file in group]
    embeddings = np.zeros((len(group), max(counts), width), np.float32)
    speech = np.zeros(embeddings.shape[:2], np.float32)
    present = np.zeros(embeddings.shape[:2], np.float32)
    for row, file in enumerate(group):
        embeddings[row, : counts[row]] = file.frames.embeddings
        speech[row, : counts[row]] = file.frames.speech
        present[row, : counts[row]] = 1.0
    return embeddings, speech, present


def predictions(run: TrainedRun, encoders: Sequence[Encoder], files: Iterator[Streams],
                failures: list[str]) -> Iterator[FilePrediction]:  # fmt: skip
    """A prediction for each file the one path brings (by each encoder), in order; failed
    files are reported on stderr and their messages appended to `failures`. Each file's
    position among those asked for rides in its source's `extra["number"]`."""
    encoder = encoders[0]  # the grid of the frame view
    for group in _head_groups(_readable(files, failures)):
        streams = [_padded([file[number] for file in group], stream_encoder.embedding_size)
                   for number, stream_encoder in enumerate(encoders)]  # fmt: skip
        pooled, per_frame = run.head(streams)
        pooled = np.asarray(pooled)
        per_frame = [None] * len(group) if per_frame is None else np.asarray(per_frame)
        counts = [len(file[0].frames.speech) for file in group]
        rows = zip((file[0] for file in group), counts, pooled, per_frame, strict=True)
        for file, count, file_probs, frame_probs in rows:
            yield FilePrediction(
                number=int(file.clip.source.extra["number"]),
                path=str(file.clip.source.path),
                seconds=file.clip.seconds,
                classes=run.classes,
                probabilities=file_probs,
                frame_probabilities=None if frame_probs is None else frame_probs[:count],
                speech=file.frames.speech.astype(bool),
                frame_hop_seconds=encoder.grid.hop_s,
                frame_window_seconds=encoder.grid.window_s,
                envelope=file.envelope,
                log_mel=file.frames.log_mel,
            )


def predict_files(
    run: TrainedRun, encoders: Sequence[Encoder], paths: Sequence[str | Path],
    failures: list[str],
) -> Iterator[FilePrediction]:
    """A prediction for every readable file, in the order given; unreadable files are reported
    on stderr as they are met and their messages appended to `failures`."""
    sources = numbered_sources(paths)
    streams = [whole_files(encoder, sources) for encoder in encoders]
    try:
        yield from predictions(run, encoders, zip(*streams, strict=True), failures)
    finally:
        for files in streams:
            files.close()


def predict_waveforms(run: TrainedRun, encoders: Sequence[Encoder],
                      waveforms: Iterable[tuple[str, np.ndarray]]) -> Iterator[FilePrediction]:
    """A prediction for every (name, waveform already decoded to 16 kHz mono float32), in
    order, as `predict_files` gives for a file of that name: a server batches its requests'
    audio through here."""
    failures: list[str] = []
    waveforms = list(waveforms)  # each encoder reads them
    streams = [decoded_files(encoder, waveforms) for encoder in encoders]
    yield from predictions(run, encoders, zip(*streams, strict=True), failures)
