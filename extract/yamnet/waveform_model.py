"""YAMNet as one Keras graph from a waveform to its embeddings and speech mask, for `export`.

The Keras front end (`frontend.LogMelPatches`), the network on the engine's weights and the
speech rule (`top_class_is_speech` of `brogue.cache`, here inside the graph).
"""

from __future__ import annotations

import keras
from keras import ops

from brogue.cache import YAMNET_SPEECH_CLASS

from .frontend import LogMelPatches
from .params import Params


class SpeechMask(keras.layers.Layer):
    """YAMNet scores [N, 521] -> [N] floats: `top_class_is_speech` inside a graph."""

    def call(self, scores):
        return ops.cast(ops.equal(ops.argmax(scores, axis=-1), YAMNET_SPEECH_CLASS), "float32")

    def compute_output_shape(self, input_shape):
        return input_shape[:1]


def waveform_model(network: keras.Model, params: Params) -> keras.Model:
    """Waveform [S] -> (embeddings [N, 1024], speech [N] as 1.0/0.0)."""
    waveform = keras.Input(batch_shape=(None,), name="waveform")
    _, patches = LogMelPatches(params, name="log_mel")(waveform)
    scores, embeddings = network(patches)
    return keras.Model(waveform, [embeddings, SpeechMask(name="speech")(scores)],
                       name="yamnet_waveform")  # fmt: skip
