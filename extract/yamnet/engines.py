"""Two YAMNet engines behind one interface: waveforms in, per-clip frames out.

- `hub`: the reference. TF Hub's SavedModel, loaded once and called once per clip,
  as the Keras example does.
- `native`: the numpy front end plus the Keras port, fed the patches of many clips
  in one batch so the accelerator (or every CPU core) stays busy.

Both record the handle and the weights fingerprint that produced their output.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

import keras
import numpy as np
from threadpoolctl import threadpool_limits

from . import features
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
# ~6 s, native/hub was 1.12 at 16, 1.15 at 32, 1.08 at 64 patches; earlier runs gave 32: 1.35-1.45,
# 64: 1.25, 128: 1.15. Bigger batches spill the early layers' activations out of the CPU caches.
DEFAULT_BATCH_PATCHES = 32
SPEECH = 0  # AudioSet class index of "Speech"


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
        # XLA on TensorFlow's CPU backend ran YAMNet 8x slower than TF's own kernels
        # (depthwise convolutions); jax always compiles, and does well on a GPU.
        self.model.compile(jit_compile=keras.backend.backend() != "tensorflow")

    def frames(self, waveforms: Sequence[np.ndarray]) -> list[Frames]:
        # The mel matmul of one clip is too small to share between BLAS threads: on 2 busy
        # cores, OpenBLAS's threads waited on each other and ran the front end 4x slower
        # (550 vs 2260 audio-s/s), and engine throughput rose 19% with one thread.
        with threadpool_limits(1, user_api="blas"):
            front = [features.waveform_to_patches(np.asarray(w), self.params) for w in waveforms]
        counts = [len(patches) for _, patches in front]
        scores, embeddings = self.infer(np.concatenate([patches for _, patches in front]))
        bounds = np.cumsum(counts)[:-1]
        return [
            Frames(s, e, log_mel)
            for s, e, (log_mel, _) in zip(
                np.split(scores, bounds), np.split(embeddings, bounds), front, strict=True
            )
        ]

    def infer(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, embeddings) of patches [P, 96, 64] from any number of clips."""
        outputs = [
            self._infer_batch(patches[start : start + self.batch_size])
            for start in range(0, len(patches), self.batch_size)
        ]
        return (
            np.concatenate([scores for scores, _ in outputs]),
            np.concatenate([embeddings for _, embeddings in outputs]),
        )

    def _infer_batch(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Pad to a power of two (capped at the batch size) so the compiled function
        # sees a handful of shapes instead of recompiling for every clip count.
        size = min(self.batch_size, 1 << max(0, len(batch) - 1).bit_length())
        padded = np.zeros((size, *batch.shape[1:]), np.float32)
        padded[: len(batch)] = batch
        # A tf.function around model(x) was no faster (82 vs 80 ms per 32 patches) and is
        # TensorFlow's alone; predict_on_batch compiles for whichever backend runs.
        scores, embeddings = self.model.predict_on_batch(padded)
        return np.asarray(scores)[: len(batch)], np.asarray(embeddings)[: len(batch)]


ENGINES = {"native": NativeEngine, "hub": HubEngine}


def load_engine(name: str, handle: str, batch_size: int = DEFAULT_BATCH_PATCHES) -> Engine:
    if name == "hub":
        return HubEngine(handle)
    if name == "native":
        return NativeEngine(handle, batch_size=batch_size)
    raise ValueError(f"unknown YAMNet engine {name!r}; choose from {sorted(ENGINES)}")
