"""GE2E's network in Keras 3, named after Resemblyzer's `VoiceEncoder` state dict.

Windows of mel power [B, 160, 40] -> 3 LSTM layers of 256 (the last returns only its final
state) -> linear 256 -> ReLU -> L2 norm -> embeddings [B, 256]. The layer `lstm.l0` holds
the state dict's `lstm.*_l0` tensors and `linear` holds `linear.*`.

torch's LSTM keeps its gates as input, forget, cell, output, as Keras does, with the input
and recurrent weights transposed and two biases that only ever appear summed; so the
conversion is transposes and one sum.
"""

from __future__ import annotations

import keras
import numpy as np

from .params import Params


def lstm_name(layer: int) -> str:
    return f"lstm.l{layer}"


def build_ge2e(params: Params) -> keras.Model:
    """Windows [B, 160, 40] -> embeddings [B, 256], weights uninitialised."""
    windows = keras.Input(shape=params.window_shape, name="windows")
    x = windows
    for layer in range(params.lstm_layers):
        last = layer == params.lstm_layers - 1
        x = keras.layers.LSTM(params.lstm_units, return_sequences=not last,
                              name=lstm_name(layer))(x)  # fmt: skip
    x = keras.layers.Dense(params.embedding_size, activation="relu", name="linear")(x)
    # x / max(|x|, 1e-12): torch divides by |x|, the same except that a window whose ReLU
    # leaves nothing gives zeros here and NaN there.
    embeddings = keras.layers.UnitNormalization(name="embeddings")(x)
    return keras.Model(windows, embeddings, name="ge2e")


def keras_weights(state: dict[str, np.ndarray], params: Params) -> dict[str, list[np.ndarray]]:
    """Resemblyzer's state dict -> each Keras layer's weights, in `layer.set_weights` order.

    Raises KeyError for a missing tensor."""
    weights = {}
    for layer in range(params.lstm_layers):
        weights[lstm_name(layer)] = [
            state[f"lstm.weight_ih_l{layer}"].T,
            state[f"lstm.weight_hh_l{layer}"].T,
            state[f"lstm.bias_ih_l{layer}"] + state[f"lstm.bias_hh_l{layer}"],
        ]
    weights["linear"] = [state["linear.weight"].T, state["linear.bias"]]
    return {name: [np.ascontiguousarray(w, np.float32) for w in ws]
            for name, ws in weights.items()}  # fmt: skip
