"""The engine API: what every encoder offers extraction, predict, export and the server.

An encoder turns 16 kHz mono waveforms into frames on its own grid (`FrameGrid`): embeddings,
the speech mask its own rule decides, and class scores where it has them. Callers hand over
clips and get clips back (`stream`); how an encoder batches is its own business. `EngineSpec`
names an encoder and its settings, and loads it in any process (Ray actors too).
Importing this module imports no framework.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np

from brogue.cache import EncoderRecord
from brogue.errors import BrogueError, require

from .grid import FrameGrid

Key = TypeVar("Key")
ENCODERS = ("yamnet", "ge2e", "hf:MODEL[@LAYER]", "whisper:MODEL[@LAYER]")
HF_PREFIX = "hf:"
WHISPER_PREFIX = "whisper:"


class EncoderError(BrogueError):
    """An encoder that cannot be named or loaded; the message is one line."""


class EncodedFrames(NamedTuple):
    embeddings: np.ndarray  # [N, D] float32
    speech: np.ndarray  # [N] bool: the encoder's speech rule
    scores: np.ndarray | None = None  # [N, K] class scores, for encoders that have them
    log_mel: np.ndarray | None = None  # [M, 64] the log-mel the encoder saw, where it has one


class Encoder(Protocol):
    name: str  # "yamnet", "ge2e", "hf:MODEL@LAYER"
    handle: str  # where its weights came from
    fingerprint: str  # of the weights it runs
    params: Any  # a dataclass (or dict) of the settings that change its frames
    runtime: str  # hub, keras, openvino, torch
    precision: str  # fp32, bf16, int8
    grid: FrameGrid
    embedding_size: int
    score_names: list[str] | None  # the K score columns' names, or None

    def stream(self, clips: Iterable[tuple[Key, np.ndarray]]
               ) -> Iterator[tuple[Key, EncodedFrames]]:  # fmt: skip
        """(key, frames) for each (key, waveform), in order, batched as the encoder likes."""
        ...


class ExportableEncoder(Encoder, Protocol):
    def waveform_model(self) -> Any:
        """A Keras model from one waveform [S] to (embeddings [N, D], speech [N]) in fp32,
        built from this encoder's weights, for `export` to build into a SavedModel."""
        ...


def encoder_record(encoder: Encoder) -> EncoderRecord:
    """The producer record of the frames `encoder` makes: the one place it is built."""
    params = encoder.params
    params = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)
    return EncoderRecord(encoder.name, encoder.handle, encoder.fingerprint, params,
                         encoder.runtime, encoder.precision, encoder.grid.window_s,
                         encoder.grid.hop_s, encoder.embedding_size)  # fmt: skip


def clip_groups(clips: Iterable[tuple[Key, np.ndarray]], max_samples: int,
                max_clips: int | None = None) -> Iterator[list[tuple[Key, np.ndarray]]]:
    """Consecutive clips in groups of at most `max_clips` clips and, unless one clip is longer by
    itself, `max_samples` samples: how encoders bound the audio of one call."""
    group: list[tuple[Key, np.ndarray]] = []
    samples = 0
    for key, waveform in clips:
        if group and (len(group) == max_clips or samples + len(waveform) > max_samples):
            yield group
            group, samples = [], 0
        group.append((key, waveform))
        samples += len(waveform)
    if group:
        yield group


def frames_of(encoder: Encoder, waveforms: Sequence[np.ndarray]) -> list[EncodedFrames]:
    """The frames of each waveform: `stream` on a list."""
    return [frames for _, frames in encoder.stream(enumerate(waveforms))]


@dataclasses.dataclass(frozen=True)
class EngineSpec:
    """An encoder and its settings, loadable in any process."""

    encoder: str = "yamnet"  # a name of ENCODERS
    handle: str | None = None  # None: the encoder's default weights
    runtime: str = "auto"  # resolved where the encoder loads: openvino on a CPU
    precision: str = "fp32"
    batch_size: int | None = None  # None: the encoder's default
    reference: bool = False  # YAMNet only: TF Hub's own graph, one call per clip

    def load(self) -> Encoder:
        batching = {"batch_size": self.batch_size} if self.batch_size else {}
        if self.encoder == "yamnet":
            from .yamnet.engines import load_engine
            from .yamnet.weights import resolve_handle

            return load_engine("hub" if self.reference else "native",
                               resolve_handle(self.handle), self.runtime, self.precision,
                               **batching)  # fmt: skip
        if self.encoder == "ge2e":
            from .ge2e.encoder import GE2EEncoder

            return GE2EEncoder(self.handle, self.runtime, self.precision, **batching)
        if self.encoder.startswith(HF_PREFIX):
            require("transformers", "hf", f"--encoder {self.encoder}")
            from .hf.encoder import HFEncoder

            if self.precision != "fp32" or batching:
                raise EncoderError(f"{self.encoder} runs in fp32 and batches as it measured "
                                   "fastest: drop --precision and --batch-size")
            return HFEncoder(self.encoder, self.runtime)
        if self.encoder.startswith(WHISPER_PREFIX):
            from .whisper.encoder import WhisperEncoder

            if batching:
                raise EncoderError(f"{self.encoder} hears one clip per request: drop --batch-size")
            return WhisperEncoder(self.encoder, self.runtime, self.precision)
        raise EncoderError(f"unknown encoder {self.encoder!r}; choose from {', '.join(ENCODERS)}")
