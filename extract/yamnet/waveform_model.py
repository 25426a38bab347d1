"""YAMNet as one Keras graph from a waveform to its embeddings and speech mask, for `export`.

The Keras front end (`frontend.LogMelPatches`), the network on the engine's weights and the
speech rule (`scores_say_speech` of `brogue.cache`, its one definition run on Keras ops).
"""

from __future__ import annotations

import keras
from keras import ops

from brogue.cache import scores_say_speech

from .frontend import LogMelPatches
from .params import Params


class SpeechMask(keras.layers.Layer):
    """YAMNet scores [N, 521] -> [N] floats, 1.0 where `scores_say_speech`."""

    def call(self, scores):
        return ops.cast(scores_say_speech(scores, ops), "float32")

    def compute_output_shape(self, input_shape):
        return input_shape[:1]


def waveform_model(network: keras.Model, params: Params) -> keras.Model:
    """Waveform [S] -> (embeddings [N, 1024], speech [N] as 1.0/0.0)."""
    waveform = keras.Input(batch_shape=(None,), name="waveform")
    _, patches = LogMelPatches(params, name="log_mel")(waveform)
    scores, embeddings = network(patches)
    return keras.Model(waveform, [embeddings, SpeechMask(name="speech")(scores)],
                       name="yamnet_waveform")  # fmt: skip
