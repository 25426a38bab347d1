"""The one entry from recordings to answers: `predict` takes files or waveforms, gives answers.

A file's answer is the clip rule that `evaluate` scores, through the run's serving head
(`pooling.serving_head`), whatever its family: the head pools the file's speech frames (the
encoder's speech mask, decided by the encoder's own rule, `brogue.cache.speech`), or all its
frames when it has none, and ends in the run's calibration map (`inference.calibration`), so its
probabilities are the calibrated ones; the accent is the most probable accent ("Not a speech"
never is the answer). How far to trust an answer, and whether the recording was one the run
trained on, is `inference.evidence`'s to say, beside it. Every recording reaches its frames
through extraction's one path (`brogue.extract.frames`): a file is decoded by its worker, a
waveform already decoded is taken as it is, and either, when long, goes through the encoder in
the same blocks of the encoder's grid, so a file and its waveform give the same frames; pieces
are batched across recordings by the encoder and joined. The head runs once per group of
recordings, padded to the longest. A fused run (`train.fusion`) has an encoder per cache: each
recording goes through the one path once per encoder, and the head takes every encoder's frames;
it has no answer for a frame of one encoder alone, so its frame probabilities are None (the
others' are on the encoder's grid, each frame heard alone through the same map).

A recording that cannot be read is answered too, by an `Unreadable` in its place: the caller
says so (predict on stderr, serve as a 422); nothing here prints.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from brogue.extract.decode import DEFAULT_WORKERS
from brogue.extract.engine import Encoder
from brogue.extract.frames import FileFrames, decoded_files, numbered_sources, whole_files

from .trained_run import TrainedRun

# Files whose frames go through the head together: one call for many short files, while the
# probabilities held stay small.
FILES_PER_HEAD_CALL = 64
PADDED_FRAMES_PER_HEAD_CALL = 16_384  # 64 MB of float32 embeddings; a longer file goes alone


class Waveform(NamedTuple):
    """A recording already decoded: 16 kHz mono float32 samples, and the name its answer has."""

    name: str
    samples: np.ndarray


# A recording: an audio file's path, or a waveform already decoded.
Recording = str | Path | Waveform


class Unreadable(NamedTuple):
    """A recording that gave no frames, in its place among the answers."""

    number: int  # its position among the recordings asked for
    path: str
    reason: str  # one line naming the recording


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


# One recording's frames by each encoder of the run, in the run's order.
Streams = tuple[FileFrames, ...]


def encoded(encoders: Sequence[Encoder], recordings: Sequence[Recording],
            workers: int = DEFAULT_WORKERS) -> Iterator[Streams | Unreadable]:  # fmt: skip
    """Every recording's whole-file frames by each encoder, or why it has none, in order.

    Files are decoded by `workers` decoding processes (0: in this process); recordings are all
    files or all waveforms. Each recording's position rides in its source's `extra["number"]`.
    """
    if all(isinstance(recording, Waveform) for recording in recordings):
        waveforms = [(recording.name, recording.samples) for recording in recordings]
        streams = [decoded_files(encoder, waveforms) for encoder in encoders]
    elif any(isinstance(recording, Waveform) for recording in recordings):
        raise TypeError("recordings are all files or all waveforms, not both")
    else:
        sources = numbered_sources(recordings)
        streams = [whole_files(encoder, sources, workers) for encoder in encoders]
    try:
        for files in zip(*streams, strict=True):
            failed = [file.clip.failure for file in files if file.frames is None]
            if failed:
                clip = files[0].clip
                yield Unreadable(int(clip.source.extra["number"]), str(clip.source.path),
                                 failed[0])  # fmt: skip
            else:
                yield files
    finally:
        for stream in streams:
            stream.close()


def predict(run: TrainedRun, encoders: Sequence[Encoder], recordings: Sequence[Recording],
            workers: int = DEFAULT_WORKERS) -> Iterator[FilePrediction | Unreadable]:  # fmt: skip
    """The answer to every recording, in order: its prediction, or why it has none."""
    waiting: list[Unreadable] = []  # answered in order, between the groups that pass them

    def readable() -> Iterator[Streams]:
        for found in encoded(encoders, recordings, workers):
            if isinstance(found, Unreadable):
                waiting.append(found)
            else:
                yield found

    for group in _head_groups(readable()):
        for prediction in _predictions(run, encoders, group):
            while waiting and waiting[0].number < prediction.number:
                yield waiting.pop(0)
            yield prediction
    yield from waiting


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


def _predictions(run: TrainedRun, encoders: Sequence[Encoder], group: list[Streams]
                 ) -> Iterator[FilePrediction]:  # fmt: skip
    """The head's answer for each file of a group, in order."""
    encoder = encoders[0]  # the grid of the frame view
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
