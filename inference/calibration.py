"""The calibration map a run applies to its clip probabilities, so they mean what they say.

The map acts on a clip's accent probabilities, the same way for every family:
q = softmax(scale · log p + shift) over the accents. On a clip-level family's softmax output
log p is its logits less a constant, so this is scaling logits (Guo et al. 2017); on
frame-dense's pooled frame probabilities it scales their log. `train.calibration` fits it on
the validation clips; run.json records it (`run_folder.calibration`), and the serving head that
predict, serve and export build (`pooling.serving_head`) ends in it. It is a Keras layer so the
head carries it, and the same layer computes it in numpy for `evaluate`: one definition.

The identity map (scale 1, shift 0) renormalises the accents, which is what a run's
probabilities were before calibration.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

# Floor under a probability before its log: an accent absent from training has p ≈ e^-1e9, and
# its log must stay far below the others' at any temperature the fit can reach.
FLOOR = 1e-30


@keras.saving.register_keras_serializable(package="brogue")
class CalibrationMap(keras.layers.Layer):
    """[..., A] accent probabilities -> [..., A] calibrated: softmax(scale · log p + shift)."""

    def __init__(self, kind: str, scale: list[float], shift: list[float], **kwargs) -> None:
        super().__init__(**kwargs)
        self.kind, self.scale, self.shift = kind, list(scale), list(shift)

    def call(self, probabilities):
        logits = ops.log(ops.maximum(probabilities, FLOOR))
        return ops.softmax(logits * np.float32(self.scale) + np.float32(self.shift), axis=-1)

    def compute_output_shape(self, shape):
        return shape

    def get_config(self) -> dict:
        return {**super().get_config(), "kind": self.kind, "scale": self.scale,
                "shift": self.shift}  # fmt: skip

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """The map on a numpy [n, A] array (float64 in, float64 out)."""
        return np.asarray(self(np.asarray(probabilities, np.float32)), np.float64)

    def to_json(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"kind": self.kind, "scale": self.scale, "shift": self.shift}
        if self.kind == "temperature":
            facts["temperature"] = 1.0 / self.scale[0]
        return facts

    @classmethod
    def from_json(cls, facts: dict[str, Any] | None, accents: int) -> CalibrationMap:
        """The map run.json records; the identity for a run fitted before calibration."""
        if facts is None:
            return identity(accents)
        return cls(facts["kind"], facts["scale"], facts["shift"])


def identity(accents: int) -> CalibrationMap:
    return CalibrationMap("identity", [1.0] * accents, [0.0] * accents)
