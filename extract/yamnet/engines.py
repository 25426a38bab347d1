"""Two YAMNet engines behind one interface: waveforms in, per-clip frames out.

- `hub`: the reference. TF Hub's SavedModel, loaded once and called once per clip,
  as the Keras example does.
- `native`: the Hub graph's front end ops and the Keras port of its network, both compiled
  by Keras and fed many clips' frames and patches per call, so the accelerator (or every
  CPU core) stays busy.

Both record the handle and the weights fingerprint that produced their output.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import keras
import numpy as np

from . import features
from .frontend import build_log_mel
from .network import build_yamnet
from .params import PARAMS, Params
from .weights import (
    ImportedWeights,
    fingerprint,
    import_weights,
    load_saved_model,
    named_variables,
)

# Patches per native batch. On 2 CPU cores, interleaved with hub (per clip) over 64 clips of
# ~6 s, native/hub was 0.98 at 16, 1.05 at 32, 0.99 at 64 and 0.80 at 128 patches (1.15, 1.12
# and 1.08 at 32, 16 and 64 on a busier machine). Bigger batches spill the early layers'
# activations out of the CPU caches; smaller ones leave the 1x1 convolutions' matmuls short.
DEFAULT_BATCH_PATCHES = 32
# STFT frames per compiled front-end call: 2,300 audio-s/s, against 1,300-2,200 for eager
# ops clip by clip and 1,100 for all clips' frames in one call (out of the CPU caches).
FRONT_END_FRAMES = 1024


class Frames(NamedTuple):
    scores: np.ndarray  # [N, 521] per 0.96 s patch
    embeddings: np.ndarray  # [N, 1024]
    log_mel: np.ndarray  # [M, 64] of the padded waveform


class Engine(Protocol):
    name: str
    handle: str
    fingerprint: str
    params: Params
    class_names: list[str]

    def frames(self, waveforms: Sequence[np.ndarray]) -> list[Frames]: ...


def read_class_names(class_map_csv: str | Path) -> list[str]:
    with open(class_map_csv, newline="") as handle:
        return [row["display_name"] for row in csv.DictReader(handle)]


class HubEngine:
    name = "hub"

    def __init__(self, handle: str, params: Params = PARAMS):
        self.handle = handle
        self.params = params
        self._model = load_saved_model(handle)
        self.fingerprint = fingerprint(named_variables(self._model))
        self.class_names = read_class_names(self._model.class_map_path().numpy().decode())

    def frames(self, waveforms: Sequence[np.ndarray]) -> list[Frames]:
        results = []
        for waveform in waveforms:
            scores, embeddings, log_mel = self._model(np.asarray(waveform, np.float32))
            results.append(Frames(scores.numpy(), embeddings.numpy(), log_mel.numpy()))
        return results


class NativeEngine:
    name = "native"

    def __init__(
        self,
        handle: str,
        batch_size: int = DEFAULT_BATCH_PATCHES,
        params: Params = PARAMS,
    ):
        self._load(import_weights(handle, params), batch_size, params)

    @classmethod
    def from_imported(
        cls,
        imported: ImportedWeights,
        batch_size: int = DEFAULT_BATCH_PATCHES,
        params: Params = PARAMS,
    ) -> NativeEngine:
        """An engine on a weights file that did not come from a handle (tests' random weights)."""
        engine = cls.__new__(cls)
        engine._load(imported, batch_size, params)
        return engine

    def _load(self, imported: ImportedWeights, batch_size: int, params: Params) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1 patch, got {batch_size}")
        self.handle = imported.handle
        self.params = params
        self.batch_size = batch_size
        self.fingerprint = imported.fingerprint
        self.class_names = read_class_names(imported.class_map_path)
        self.model = build_yamnet(params)
        self.model.load_weights(imported.weights_path)
        self.front_end = build_log_mel(params)
        # XLA on TensorFlow's CPU backend ran YAMNet 8x slower than TF's own kernels
        # (depthwise convolutions); jax always compiles, and does well on a GPU.
        for model in (self.model, self.front_end):
            model.compile(jit_compile=keras.backend.backend() != "tensorflow")

    def frames(self, waveforms: Sequence[np.ndarray]) -> list[Frames]:
        log_mels = self.log_mels(waveforms)
        patches = [features.patches(log_mel, self.params) for log_mel in log_mels]
        scores, embeddings = self.infer(np.concatenate(patches))
        bounds = np.cumsum([len(p) for p in patches])[:-1]
        return [
            Frames(*outputs)
            for outputs in zip(
                np.split(scores, bounds), np.split(embeddings, bounds), log_mels, strict=True
            )
        ]

    def log_mels(self, waveforms: Sequence[np.ndarray]) -> list[np.ndarray]:
        """log(mel + offset) [M, 64] of each padded waveform, by the Hub graph's STFT ops."""
        params = self.params
        frames = [
            np.lib.stride_tricks.sliding_window_view(
                features.pad_waveform(np.asarray(waveform, np.float32), params),
                params.stft_window_samples,
            )[:: params.stft_hop_samples]
            for waveform in waveforms
        ]
        (log_mel,) = _predict(self.front_end, np.concatenate(frames), FRONT_END_FRAMES)
        return np.split(log_mel, np.cumsum([len(f) for f in frames])[:-1])

    def infer(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, embeddings) of patches [P, 96, 64] from any number of clips."""
        scores, embeddings = _predict(self.model, patches, self.batch_size)
        return scores, embeddings


def _predict(model: keras.Model, inputs: np.ndarray, size: int) -> list[np.ndarray]:
    """The model's outputs for `inputs`, run `size` rows at a time.

    The last call is padded to a power of two (at most `size`), so the compiled function
    sees a handful of shapes instead of one per clip count. A tf.function around
    model(x) was no faster than predict_on_batch (82 vs 80 ms per 32 patches) and is
    TensorFlow's alone; predict_on_batch compiles for whichever backend runs.
    """
    outputs = []
    for start in range(0, len(inputs), size):
        batch = inputs[start : start + size]
        rows = min(size, 1 << (len(batch) - 1).bit_length())
        padded = np.zeros((rows, *batch.shape[1:]), np.float32)
        padded[: len(batch)] = batch
        results = keras.tree.flatten(model.predict_on_batch(padded))
        outputs.append([np.asarray(result)[: len(batch)] for result in results])
    return [np.concatenate(parts) for parts in zip(*outputs, strict=True)]


ENGINES = {"native": NativeEngine, "hub": HubEngine}


def load_engine(name: str, handle: str, batch_size: int = DEFAULT_BATCH_PATCHES) -> Engine:
    if name == "hub":
        return HubEngine(handle)
    if name == "native":
        return NativeEngine(handle, batch_size=batch_size)
    raise ValueError(f"unknown YAMNet engine {name!r}; choose from {sorted(ENGINES)}")
