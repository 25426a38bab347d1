"""Where GE2E's network runs: windows [B, 160, 40] -> embeddings [B, 256].

- `keras`: the Keras port as it is (TensorFlow's LSTM kernels on a CPU, XLA under jax).
- `openvino` (what `auto` picks on a CPU): the same Keras model translated layer by layer into an
  OpenVINO graph (`openvino_model`): each LSTM becomes one fused LSTMSequence op. Keras's own
  OpenVINO export (`model.export(format="openvino")`, as YAMNet's runtime uses) cannot convert
  TensorFlow's LSTM loop (its TensorList ops); unrolled over 160 steps it converts, in 70 s,
  to a graph that ran at about half the speed of the fused op.

The whole encoder on 2 busy AVX-512 cores (`python -m dev bench ge2e`, medians of interleaved
rounds): OpenVINO 1.15x Keras in fp32, 1.84x in bf16.

`precision` is fp32 or bf16 (OpenVINO on a CPU with AVX512-BF16 or AMX only); `auto` is Keras
where jax has an accelerator, else OpenVINO: every encoder's rules (`extract/runtime.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from brogue import atomic
from brogue.extract.openvino_streams import StreamQueue
from brogue.extract.runtime import KerasNetwork, openvino_hints

if TYPE_CHECKING:
    import keras

    from ..weights_store import ImportedWeights
    from .params import Params

# OpenVINO keeps LSTM gates as forget, input, cell, output; Keras as input, forget, cell, output.
_KERAS_TO_OPENVINO_GATES = (1, 0, 2, 3)


class Network(Protocol):
    runtime: str
    precision: str

    def __call__(self, windows: np.ndarray) -> Sequence[np.ndarray]:
        """[embeddings [B, 256]] of windows [B, 160, 40]."""
        ...


def load_network(imported: ImportedWeights, params: Params, runtime: str, precision: str,
                 batch_size: int) -> Network:
    """The network on `imported`'s weights in `runtime` (already resolved) at `precision`."""
    if runtime == "keras":
        return KerasNetwork(keras_model(imported, params), batch_size)
    return OpenVINONetwork(converted(imported, params), precision, batch_size)


def keras_model(imported: ImportedWeights, params: Params) -> keras.Model:
    from .network import build_ge2e

    model = build_ge2e(params)
    model.load_weights(imported.weights_path)
    return model


class OpenVINONetwork:
    """The translated graph, one inference stream per core (`openvino_streams.StreamQueue`)."""

    runtime = "openvino"

    def __init__(self, xml: Path, precision: str, batch_size: int):
        import openvino as ov

        self.precision = precision
        core = ov.Core()
        compiled = core.compile_model(core.read_model(xml), "CPU",
                                      openvino_hints(precision, streams=True))
        self._queue = StreamQueue(compiled, batch_size, [compiled.outputs[0]])

    def __call__(self, windows: np.ndarray) -> Sequence[np.ndarray]:
        return self._queue(windows)


def converted(imported: ImportedWeights, params: Params) -> Path:
    """The OpenVINO IR of `imported`'s network, translated on first use (which needs Keras) and
    kept beside the weights as `<fingerprint>.openvino-<version>.xml/.bin`, as YAMNet's is: a
    run that finds it never imports Keras, whose TensorFlow alone held 800 MB of a long
    recording's 1.1 GB peak."""
    from importlib.metadata import version

    import openvino as ov

    xml = imported.weights_path.with_name(
        f"{imported.fingerprint}.openvino-{version('openvino')}.xml")
    if not xml.exists():
        with atomic.openvino_ir(xml) as temporary:
            # fp32 weights as they are: OpenVINO would store them in fp16 by default
            ov.save_model(openvino_model(keras_model(imported, params)), temporary,
                          compress_to_fp16=False)  # fmt: skip
    return xml


def openvino_model(model: keras.Model):
    """`model` (build_ge2e's layers: LSTMs, then a Dense, then a UnitNormalization) as an
    OpenVINO graph of the same weights."""
    import keras
    import openvino as ov
    import openvino.opset13 as ops

    inputs = ops.parameter([-1, *model.input_shape[1:]], np.float32, name="windows")
    batch = ops.gather(ops.shape_of(inputs), ops.constant(np.array([0])), ops.constant(0))
    x = inputs
    for layer in model.layers[1:]:
        if isinstance(layer, keras.layers.LSTM):
            kernel, recurrent, bias = (_openvino_gates(w) for w in layer.get_weights())
            units = layer.units
            zeros = ops.broadcast(ops.constant(np.float32(0)),
                                  ops.concat([batch, ops.constant(np.array([1, units]))], 0))
            steps = ops.broadcast(ops.constant(np.int32(model.input_shape[1])), batch)
            sequence = ops.lstm_sequence(x, zeros, zeros, steps, ops.constant(kernel.T[None]),
                                         ops.constant(recurrent.T[None]),
                                         ops.constant(bias[None]), units, "forward")
            # outputs: all states [B, 1, T, units], the last state [B, 1, units]
            x = ops.squeeze(sequence.output(0 if layer.return_sequences else 1),
                            ops.constant(np.array([1])))
        elif isinstance(layer, keras.layers.Dense) and layer.activation is keras.activations.relu:
            kernel, bias = layer.get_weights()
            x = ops.relu(ops.add(ops.matmul(x, ops.constant(kernel), False, False),
                                 ops.constant(bias)))
        elif isinstance(layer, keras.layers.UnitNormalization):
            x = ops.normalize_l2(x, ops.constant(np.array([1])), 1e-24, "max")
        else:
            raise TypeError(f"no OpenVINO translation for layer {layer.name}")
    return ov.Model([x], [inputs], "ge2e")


def _openvino_gates(weights: np.ndarray) -> np.ndarray:
    """Keras's gate blocks on the last axis, in OpenVINO's order."""
    gates = np.split(weights, 4, axis=-1)
    return np.concatenate([gates[i] for i in _KERAS_TO_OPENVINO_GATES], axis=-1)
