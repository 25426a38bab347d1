"""Whisper's encoder as an OpenVINO graph built from the parameter table, cut after the kept layer.

log-mel [B, bands, T] -> states [B, T/2, width]: two convolutions of kernel 3 (the second of
stride 2), each followed by exact (erf) GELU; the first T/2 rows of the positional table added;
then pre-norm transformer layers (self-attention, then a GELU feed-forward, each around a
residual), and the final layer norm only when the last layer is kept. Layer k's state is the
residual stream after k layers (0: before the first), so the graph holds the first k layers
only. No mask: Whisper's encoder attends to every state it is given.

The graph is built op by op (`openvino.opset13`) from numpy weights, so no torch, no tracing and
no conversion cache are needed. It compiles for fp32 (asked for explicitly: OpenVINO would pick
bf16 by itself on a CPU that has it) or bf16, and runs one clip per inference request, one
single-threaded stream per core, so clips of different lengths need no padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .parameters import LAYER_NORM_EPSILON, EncoderWeights

_OPENVINO_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def encoder_graph(weights: EncoderWeights, layer: int):
    """The OpenVINO model of `weights` giving hidden state `layer` (0 to the depth)."""
    import openvino as ov
    import openvino.opset13 as ops

    def const(array: np.ndarray):
        return ops.constant(np.ascontiguousarray(array, np.float32))

    def conv_gelu(x, name: str, stride: int):
        weight, bias = weights.stem[f"{name}.weight"], weights.stem[f"{name}.bias"]
        x = ops.convolution(x, const(weight), [stride], [1], [1], [1])
        return ops.gelu(ops.add(x, const(bias[None, :, None])), "erf")

    def norm(x, gamma: np.ndarray, beta: np.ndarray):
        x = ops.mvn(x, ops.constant(np.array([-1])), True, LAYER_NORM_EPSILON, "inside_sqrt")
        return ops.add(ops.multiply(x, const(gamma)), const(beta))

    def linear(x, params: dict, name: str):
        return ops.add(ops.matmul(x, const(params[f"{name}.weight"]), False, True),
                       const(params[f"{name}.bias"]))

    head_width = weights.width // weights.heads
    split_heads = ops.constant(np.array([0, 0, weights.heads, head_width]))
    join_heads = ops.constant(np.array([0, 0, weights.width]))

    def attention(x, params: dict):
        qkv = linear(norm(x, params["attention_norm.gamma"], params["attention_norm.beta"]),
                     params, "qkv")
        # [B, T, width] each -> [B, heads, T, head width]
        q, k, v = (ops.transpose(ops.reshape(part, split_heads, True),
                                 ops.constant(np.array([0, 2, 1, 3])))
                   for part in ops.split(qkv, ops.constant(-1), 3).outputs())
        heard = ops.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head width)
        heard = ops.reshape(ops.transpose(heard, ops.constant(np.array([0, 2, 1, 3]))),
                            join_heads, True)
        return ops.add(x, linear(heard, params, "attention_out"))

    def feed_forward(x, params: dict):
        hidden = linear(norm(x, params["ffn_norm.gamma"], params["ffn_norm.beta"]), params,
                        "ffn_in")
        return ops.add(x, linear(ops.gelu(hidden, "erf"), params, "ffn_out"))

    log_mel = ops.parameter([-1, weights.mel_bands, -1], np.float32, name="log_mel")
    x = conv_gelu(conv_gelu(log_mel, "conv1", 1), "conv2", 2)
    x = ops.transpose(x, ops.constant(np.array([0, 2, 1])))  # [B, states, width]
    states = ops.gather(ops.shape_of(x), ops.constant(np.array([1])), ops.constant(0))
    positions = ops.slice(const(weights.stem["positions"]), ops.constant(np.array([0])), states,
                          ops.constant(np.array([1])), ops.constant(np.array([0])))
    x = ops.add(x, positions)
    for params in weights.layers[:layer]:
        x = feed_forward(attention(x, params), params)
    if layer == len(weights.layers):
        x = norm(x, weights.stem["final_norm.gamma"], weights.stem["final_norm.beta"])
    return ov.Model([x], [log_mel], f"whisper-encoder-layer{layer}")


class Network:
    """The compiled graph: log-mels [bands, T] in, states [T/2, width] out, in order."""

    runtime = "openvino"

    def __init__(self, weights: EncoderWeights, layer: int, precision: str) -> None:
        import openvino as ov

        self.precision = precision
        compiled = ov.Core().compile_model(
            encoder_graph(weights, layer), "CPU",
            {"INFERENCE_PRECISION_HINT": _OPENVINO_PRECISION[precision],
             "PERFORMANCE_HINT": "THROUGHPUT"})  # fmt: skip
        self._queue = ov.AsyncInferQueue(compiled,
                                         compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._queue.set_callback(self._collect)
        self._results: dict[int, np.ndarray] = {}

    def _collect(self, request, index: int) -> None:
        self._results[index] = request.get_output_tensor(0).data[0].copy()

    def __call__(self, log_mels: Sequence[np.ndarray]) -> list[np.ndarray]:
        for index, log_mel in enumerate(log_mels):
            self._queue.start_async({0: np.ascontiguousarray(log_mel[None], np.float32)}, index)
        self._queue.wait_all()
        results, self._results = [self._results[i] for i in range(len(log_mels))], {}
        return results
