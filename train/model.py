"""The accent classifier: a dense stack described by the config's (width, dropout) table.

With the default table this is the Keras example's model layer for layer, names included, so its
summary lines up with the example's (511,815 parameters for seven classes).
"""

from __future__ import annotations

import keras

from brogue.train.config import ConfigError, TrainConfig

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
    model = keras.Model(inputs, outputs, name="accent_recognition")
    try:
        optimizer = keras.optimizers.get(
            {"class_name": config.optimizer, "config": {"learning_rate": config.learning_rate}}
        )
    except ValueError as error:
        raise ConfigError(f"optimizer {config.optimizer!r} is not a Keras optimizer") from error
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
    )
    return model
