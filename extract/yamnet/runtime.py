"""Where YAMNet's network runs: patches [B, 96, 64] -> (scores [B, 521], embeddings [B, 1024]).

- `keras`: the Keras port as it is (`extract/runtime.KerasNetwork`): TensorFlow's kernels on a
  CPU, XLA under jax (on a GPU, where no TensorFlow is needed once the weights are imported).
- `openvino`: the same Keras model converted once to OpenVINO IR (`model.export(...,
  format="openvino")`) and cached beside the imported weights as
  `<fingerprint>.openvino-<version>.xml/.bin`, so a new weights file or a new OpenVINO
  converts again. On this project's 2-core AVX-512 CPU (AVX512-BF16, no AMX) it ran the
  network alone at 1.4x TensorFlow's speed in fp32 and 2.7x in bf16 (docs/benchmarks.md).

LiteRT (XNNPACK, `model.export(..., format="litert")`), onnxruntime and torch were measured
too (`python -m dev bench network-runtimes`): in fp32 the best, LiteRT, ran 0.8-1.3x OpenVINO
depending on the call's size (below 1x in the stage's 128-patch calls), none has bf16 on x86 that
beats OpenVINO's, so none earned a place beside it (docs/benchmarks.md).

Which runtime `auto` means, and where bf16 runs, are every encoder's rules (`extract/runtime.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from brogue import atomic

from ..openvino_streams import StreamQueue
from ..runtime import KerasNetwork, openvino_hints

if TYPE_CHECKING:
    import keras

    from ..weights_store import ImportedWeights
    from .params import Params


class Network(Protocol):
    runtime: str
    precision: str

    def __call__(self, patches: np.ndarray) -> Sequence[np.ndarray]:
        """(scores [B, 521], embeddings [B, 1024]) of patches [B, 96, 64]."""
        ...


def load_network(imported: ImportedWeights, params: Params, runtime: str, precision: str,
                 batch_size: int) -> Network:
    """The network on `imported`'s weights in `runtime` (already resolved) at `precision`."""
    if runtime == "keras":
        return KerasNetwork(keras_model(imported, params), batch_size)
    return OpenVINONetwork(imported, params, precision, batch_size)


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
            openvino_hints(precision, streams=True))
        # Outputs by width, not position: the converter orders them as it likes.
        width = {output.get_partial_shape()[1].get_length(): output
                 for output in compiled.outputs}
        self._queue = StreamQueue(compiled, batch_size,
                                  [width[params.num_classes], width[params.embedding_size]])

    def __call__(self, patches: np.ndarray) -> Sequence[np.ndarray]:
        """(scores, embeddings) of `patches`."""
        return self._queue(patches)


def keras_model(imported: ImportedWeights, params: Params) -> keras.Model:
    from .network import build_yamnet

    model = build_yamnet(params)
    model.load_weights(imported.weights_path)
    return model


def converted(imported: ImportedWeights, params: Params) -> Path:
    """The OpenVINO IR of `imported`'s network, converted on first use (needs TensorFlow)."""
    from importlib.metadata import version

    xml = imported.beside(f".openvino-{version('openvino')}.xml")
    if not xml.exists():
        with atomic.openvino_ir(xml) as temporary:
            keras_model(imported, params).export(str(temporary), format="openvino",
                                                 verbose=False)  # fmt: skip
    return xml
