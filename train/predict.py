"""`predict`: the accent of new recordings, by the YAMNet and the head a run was trained with.

A file's answer is the clip rule that `evaluate` scores, through the run's serving head
(`train.families`), whatever its family: the model pools the file's speech frames (YAMNet's top
class is Speech), or all its frames when it has none, and the accent is the most probable accent
("Not a speech" never is the answer). Files are decoded by the extractor's worker, their patches
go through YAMNet's engine as a stream (batched across files as it likes), and the head runs once
per group of files, padded to the longest. YAMNet runs at the precision of the cache the run was
trained on (fp32 for runs that do not say).
A long recording comes in pieces, as in extraction: its embeddings are joined (4 KB per 0.48 s
frame, about 90 MB for 3 hours) so that a clip-level head sees the whole file, while its audio
never is held whole; its log-mel, for the plot, is joined the same way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import keras
import numpy as np

from brogue.errors import BrogueError
from brogue.extract.corpus import ClipSource
from brogue.extract.decode import DEFAULT_WORKERS, Prepared, prepared_in_order
from brogue.extract.yamnet.engines import Engine, Frames, NativeEngine
from brogue.extract.yamnet.params import SPEECH_CLASS, Params
from brogue.train.families import serving_head
from brogue.train.model import EMBEDDING_WIDTH

# Files whose frames go through the head together: one call for many short files, while the
# probabilities held stay small.
FILES_PER_HEAD_CALL = 64
PADDED_FRAMES_PER_HEAD_CALL = 16_384  # 64 MB of float32 embeddings; a longer file goes alone


class PredictError(BrogueError):
    """A run cannot predict, or some files could not be read; the message is one line."""


@dataclass(frozen=True)
class TrainedRun:
    """What inference needs from a run folder: the head, its classes and its YAMNet."""

    folder: Path
    classes: list[str]  # the accents, then "Not a speech"
    # (embeddings [B, T, 1024], speech [B, T], present [B, T]) -> (probabilities [B, C],
    # frame probabilities [B, T, C]), for every family: `train.families.serving_head`.
    head: keras.layers.Layer
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
    # Runs from before the model families were all the example's frame-dense head.
    family = facts.get("model", "frame-dense")
    head = serving_head(keras.models.load_model(model_path), family, len(facts["classes"]))
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


class WholeFile(NamedTuple):
    """A file's frames once its pieces are joined."""

    speech: np.ndarray  # [N] bool: YAMNet's top class is Speech
    embeddings: np.ndarray  # [N, 1024]
    log_mel: np.ndarray  # [M, 64]: the front end's output that YAMNet classified


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


def _whole_files(
    computed: Iterator[tuple[Prepared, Frames]], params: Params
) -> Iterator[tuple[Prepared, WholeFile]]:
    """(last piece, the whole file) per file, its pieces' frames and log-mel joined.

    A piece's patches start on the patch hop, so its log-mel repeats the last
    `patch_frames - patch_hop_frames` rows of the piece before: those are dropped.
    """
    overlap = params.patch_frames - params.patch_hop_frames
    pieces: list[WholeFile] = []  # the pieces of the file in progress
    for clip, frames in computed:
        if clip.piece == 0:  # a file whose later pieces never came failed: drop its start
            pieces = []
        count = len(frames.scores) if clip.frames is None else clip.frames
        rows = params.patch_frames + (count - 1) * params.patch_hop_frames
        pieces.append(WholeFile(
            frames.scores[:count].argmax(axis=1) == SPEECH_CLASS,
            frames.embeddings[:count],
            frames.log_mel[overlap if clip.piece else 0 : rows],
        ))  # fmt: skip
        if clip.last:
            yield clip, WholeFile(*(np.concatenate(parts) for parts in zip(*pieces, strict=True)))


def _head_groups(
    files: Iterator[tuple[Prepared, WholeFile]],
) -> Iterator[list[tuple[Prepared, WholeFile]]]:
    """Whole files in groups for the head, each group's padded frames within the budget: one
    long recording must not pad 63 short files to its length."""
    group: list[tuple[Prepared, WholeFile]] = []
    longest = 0
    for file in files:
        frames = len(file[1].speech)
        padded = (len(group) + 1) * max(longest, frames)
        if group and (len(group) == FILES_PER_HEAD_CALL or padded > PADDED_FRAMES_PER_HEAD_CALL):
            yield group
            group, longest = [], 0
        group.append(file)
        longest = max(longest, frames)
    if group:
        yield group


def predict_files(
    run: TrainedRun, engine: Engine, paths: Sequence[str | Path], failures: list[str]
) -> Iterator[FilePrediction]:
    """A prediction for every readable file, in the order given; unreadable files are reported
    on stderr as they are met and their messages appended to `failures`."""
    # Each file's position rides along in `extra`, which survives the trip through a worker.
    sources = [ClipSource(Path(path), "", "", {"number": str(n)}, str(path))
               for n, path in enumerate(paths)]  # fmt: skip
    prepared = prepared_in_order(sources, DEFAULT_WORKERS, {})
    clips = ((clip, clip.waveform) for clip in _readable(prepared, failures))
    for group in _head_groups(_whole_files(engine.stream(clips), engine.params)):
        counts = [len(whole.speech) for _, whole in group]
        embeddings = np.zeros((len(group), max(counts), EMBEDDING_WIDTH), np.float32)
        speech = np.zeros(embeddings.shape[:2], np.float32)
        present = np.zeros(embeddings.shape[:2], np.float32)
        for row, (_, whole) in enumerate(group):
            embeddings[row, : len(whole.speech)] = whole.embeddings
            speech[row, : len(whole.speech)] = whole.speech
            present[row, : len(whole.speech)] = 1.0
        pooled, per_frame = (np.asarray(x) for x in run.head(embeddings, speech, present))
        rows = zip(group, counts, pooled, per_frame, strict=True)
        for (clip, whole), count, file_probs, frame_probs in rows:
            yield FilePrediction(
                number=int(clip.source.extra["number"]),
                path=str(clip.source.path),
                seconds=clip.seconds,
                classes=run.classes,
                probabilities=file_probs,
                frame_probabilities=frame_probs[:count],
                speech=whole.speech,
                frame_hop_seconds=engine.params.patch_hop_seconds,
                log_mel=whole.log_mel,
            )
