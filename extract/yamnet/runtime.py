"""Where YAMNet's network runs: patches [B, 96, 64] -> (scores [B, 521], embeddings [B, 1024]).

- `keras`: the Keras port as it is, compiled by the Keras backend: TensorFlow's kernels on a
  CPU, XLA under jax (on a GPU, where no TensorFlow is needed once the weights are imported).
- `openvino`: the same Keras model converted once to OpenVINO IR (`model.export(...,
  format="openvino")`) and cached beside the imported weights as
  `<fingerprint>.openvino-<version>.xml/.bin`, so a new weights file or a new OpenVINO
  converts again. On this project's 2-core AVX-512 CPU (AVX512-BF16, no AMX) it ran the
  network alone at 1.4x TensorFlow's speed in fp32 and 2.7x in bf16 (docs/benchmarks.md).

LiteRT (XNNPACK, `model.export(..., format="litert")`) was measured too: 0.97-1.09x TensorFlow
in fp32 on the same CPU, against 1.4-1.6x for OpenVINO, and it has no bf16 on x86, so it did
not earn a place beside OpenVINO.

`precision` is fp32 or bf16. bf16 needs OpenVINO and a CPU with AMX or AVX512-BF16; it is a
compile hint, so one IR serves both precisions. fp32 is asked for explicitly, because
OpenVINO would otherwise pick bf16 by itself on such a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from brogue import atomic
from brogue.errors import BrogueError

from ..openvino_streams import StreamQueue

if TYPE_CHECKING:  # the command lines read RUNTIMES and PRECISIONS without waiting for Keras
    import keras

    from .params import Params
    from .weights import ImportedWeights

RUNTIMES = ("auto", "keras", "openvino")
PRECISIONS = ("fp32", "bf16")
_OPENVINO_PRECISION = {"fp32": "f32", "bf16": "bf16"}


class RuntimeUnavailable(BrogueError):
    """A runtime or precision this machine cannot give; the message is one line."""


class Network(Protocol):
    runtime: str
    precision: str

    def __call__(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def resolve(runtime: str, precision: str) -> str:
    """The runtime `auto` stands for here, refusing a precision this machine lacks.

    `auto` is Keras where an accelerator runs Keras (jax on a GPU), OpenVINO on a CPU.
    """
    if runtime not in RUNTIMES or precision not in PRECISIONS:
        raise ValueError(f"runtime {runtime!r} / precision {precision!r}: "
                         f"choose from {RUNTIMES} / {PRECISIONS}")
    if runtime == "auto":
        runtime = "keras" if _accelerator() else "openvino"
    if precision == "bf16":
        if runtime != "openvino":
            raise RuntimeUnavailable(f"bf16 runs on the openvino runtime only, not {runtime}")
        if not cpu_has_bf16():
            raise RuntimeUnavailable("bf16 needs a CPU with AMX or AVX512-BF16, and this one has "
                                "neither; use --precision fp32")
    return runtime


def cpu_has_bf16() -> bool:
    """Whether OpenVINO's CPU plugin computes natively in bf16 (AMX or AVX512-BF16) here."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _accelerator() -> bool:
    """Whether Keras runs on jax here and jax has a GPU. Asked of Keras only when it is loaded
    already, else read from $KERAS_BACKEND: importing Keras would import TensorFlow, which the
    openvino runtime does without."""
    import os
    import sys

    if "keras" in sys.modules:
        backend = sys.modules["keras"].backend.backend()
    else:
        backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    return False


def load_network(imported: ImportedWeights, params: Params, runtime: str, precision: str,
                 batch_size: int) -> Network:
    """The network on `imported`'s weights in `runtime` (already resolved) at `precision`."""
    if runtime == "keras":
        return KerasNetwork(imported, params, batch_size)
    return OpenVINONetwork(imported, params, precision, batch_size)


class KerasNetwork:
    runtime, precision = "keras", "fp32"

    def __init__(self, imported: ImportedWeights, params: Params, batch_size: int):
        import keras

        self.model = keras_model(imported, params)
        self.batch_size = batch_size
        # XLA on TensorFlow's CPU backend ran YAMNet 8x slower than TF's own kernels
        # (depthwise convolutions); jax always compiles, and does well on a GPU.
        self.model.compile(jit_compile=keras.backend.backend() != "tensorflow")

    def __call__(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The outputs for `patches`, at most `batch_size` rows per call.

        The last call is padded to a power of two (at most `batch_size`), so the compiled
        function sees a handful of shapes instead of one per clip count.
        """
        scores, embeddings = [], []
        for start in range(0, len(patches), self.batch_size):
            batch = patches[start : start + self.batch_size]
            rows = min(self.batch_size, 1 << (len(batch) - 1).bit_length())
            padded = np.zeros((rows, *batch.shape[1:]), np.float32)
            padded[: len(batch)] = batch
            batch_scores, batch_embeddings = self.model.predict_on_batch(padded)
            scores.append(np.asarray(batch_scores)[: len(batch)])
            embeddings.append(np.asarray(batch_embeddings)[: len(batch)])
        return np.concatenate(scores), np.concatenate(embeddings)


class OpenVINONetwork:
    """The converted network, one inference stream per core (`openvino_streams.StreamQueue`)."""

    runtime = "openvino"

    def __init__(self, imported: ImportedWeights, params: Params, precision: str,
                 batch_size: int):
        import openvino as ov

        self.precision = precision
        core = ov.Core()
        compiled = core.compile_model(
            core.read_model(converted(imported, params)), "CPU",
            {"INFERENCE_PRECISION_HINT": _OPENVINO_PRECISION[precision],
             "PERFORMANCE_HINT": "THROUGHPUT"},
        )
        # Outputs by width, not position: the converter orders them as it likes.
        width = {output.get_partial_shape()[1].get_length(): output
                 for output in compiled.outputs}
        self._queue = StreamQueue(compiled, batch_size,
                                  [width[params.num_classes], width[params.embedding_size]])

    def __call__(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, embeddings) of `patches`."""
        scores, embeddings = self._queue(patches)
        return scores, embeddings


def keras_model(imported: ImportedWeights, params: Params) -> keras.Model:
    from .network import build_yamnet

    model = build_yamnet(params)
    model.load_weights(imported.weights_path)
    return model


def converted(imported: ImportedWeights, params: Params) -> Path:
    """The OpenVINO IR of `imported`'s network, converted on first use (needs TensorFlow)."""
    from importlib.metadata import version

    xml = imported.weights_path.with_name(
        f"{imported.fingerprint}.openvino-{version('openvino')}.xml"
    )
    if not xml.exists():
        with atomic.openvino_ir(xml) as temporary:
            keras_model(imported, params).export(str(temporary), format="openvino",
                                                 verbose=False)  # fmt: skip
    return xml
