"""Where an encoder's network runs, and at what precision: the rules every encoder shares.

Each encoder offers some runtimes (its row in `encoders.py`): `keras` (the Keras port as it is,
compiled by the Keras backend), `openvino` (the same network converted once and run one stream
per core, `openvino_streams.py`), `torch` (a PyTorch model as it is). `auto` is Keras where jax
has an accelerator and the encoder has a Keras port, else OpenVINO: on this project's CPUs
OpenVINO ran every encoder fastest (docs/benchmarks.md).

`precision` is fp32 or bf16. bf16 needs OpenVINO and a CPU with AMX or AVX512-BF16; it is a
compile hint, so one IR serves both precisions. fp32 is asked for explicitly, because OpenVINO
would otherwise pick bf16 by itself on such a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from brogue.errors import BrogueError

# OpenVINO's name of each precision brogue offers.
OPENVINO_PRECISION = {"fp32": "f32", "bf16": "bf16"}
PRECISIONS = tuple(OPENVINO_PRECISION)
# The runtimes of an encoder with a Keras port (converted for OpenVINO), and of a torch model.
KERAS_RUNTIMES = ("auto", "keras", "openvino")
TORCH_RUNTIMES = ("auto", "torch", "openvino")
# The runtimes of an encoder built straight as an OpenVINO graph (Whisper's).
OPENVINO_RUNTIMES = ("auto", "openvino")


class RuntimeUnavailable(BrogueError):
    """A runtime or precision this machine cannot give; the message is one line."""


def resolve(runtime: str, precision: str, offered: Sequence[str],
            precisions: Sequence[str] = PRECISIONS) -> str:
    """The runtime `auto` stands for among `offered` (an encoder's runtimes) here, refusing a
    runtime or precision the encoder lacks and a precision this machine lacks."""
    if runtime not in offered or precision not in precisions:
        raise RuntimeUnavailable(f"runtime {runtime!r} / precision {precision!r}: choose from "
                                 f"{', '.join(offered)} / {', '.join(precisions)}")
    if runtime == "auto":
        runtime = "keras" if "keras" in offered and _accelerator() else "openvino"
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


def openvino_hints(precision: str, streams: bool) -> dict[str, str]:
    """OpenVINO's compile settings for `precision`; `streams` for a model run one stream per
    core (`openvino_streams.StreamQueue`) rather than one call at a time."""
    hints = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[precision]}
    return hints | ({"PERFORMANCE_HINT": "THROUGHPUT"} if streams else {})


class KerasNetwork:
    """A Keras model called in batches of at most `batch_size` rows: inputs in, its outputs
    (a list, one array per output) out."""

    runtime, precision = "keras", "fp32"

    def __init__(self, model: Any, batch_size: int) -> None:
        import keras

        self.model, self.batch_size = model, batch_size
        # XLA on TensorFlow's CPU backend ran YAMNet 8x slower than TF's own kernels
        # (depthwise convolutions); jax always compiles, and does well on a GPU.
        self.model.compile(jit_compile=keras.backend.backend() != "tensorflow")

    def __call__(self, inputs: np.ndarray) -> list[np.ndarray]:
        """The outputs for `inputs`. The last call is padded to a power of two (at most
        `batch_size`), so the compiled function sees a handful of shapes instead of one per
        clip count."""
        calls = []
        for start in range(0, len(inputs), self.batch_size):
            batch = inputs[start : start + self.batch_size]
            rows = min(self.batch_size, 1 << (len(batch) - 1).bit_length())
            padded = np.zeros((rows, *batch.shape[1:]), np.float32)
            padded[: len(batch)] = batch
            outputs = self.model.predict_on_batch(padded)
            outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
            calls.append([np.asarray(output)[: len(batch)] for output in outputs])
        return [np.concatenate(output) for output in zip(*calls, strict=True)]
