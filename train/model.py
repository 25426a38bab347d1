"""frame-dense, the example's classifier: a dense stack described by the config's table.

It scores each frame; a clip's accent pools the frame probabilities over its speech frames.

With the default table this is the Keras example's model layer for layer, names included, so its
summary lines up with the example's (511,815 parameters for seven classes).
"""

from __future__ import annotations

import keras

from brogue.train.config import TrainConfig
from brogue.train.keras_training import compile_model

EMBEDDING_WIDTH = 1024  # YAMNet's embedding size.


def build_model(config: TrainConfig, num_classes: int) -> keras.Model:
    """Dense+ReLU and Dropout per table row, then a softmax over the classes; compiled."""
    inputs = keras.Input(shape=(EMBEDDING_WIDTH,), name="embedding")
    x = inputs
    for number, (width, dropout) in enumerate(config.layers, start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"dense_{number}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{number}")(x)
    # "ouput" is the example's spelling; keeping it keeps layer names comparable.
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="ouput")(x)
    return compile_model(keras.Model(inputs, outputs, name="accent_recognition"), config)
