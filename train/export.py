"""`export`: one SavedModel from a 16 kHz waveform to accent probabilities, servable without brogue.

The model chains the run's encoder as one Keras graph (`waveform_model` of the engine API:
for YAMNet its front end, its network on the run's weights, checked against the run's
fingerprint as `predict` does, always fp32, and its speech rule, `brogue.cache.speech`'s own
definition run on Keras ops) and the run's serving head (any family,
`brogue.inference.pooling`), which pools as `predict` does. Only YAMNet has such a graph:
GE2E's mel front end is numpy and hf's network is torch or OpenVINO, so a run of either, or a
fused run, is refused in one line (serve it instead). Its `serve` endpoint takes a
float32 waveform [samples] in [-1, 1] and returns a dict:

- `probabilities` [C]: the model's answer over the speech frames (all frames when there is
  none); the accent is the most probable of the first C - 1 classes;
- `frame_probabilities` [N, C], one row per frame of the encoder's grid (for a clip-level
  family, its answer for each frame alone);
- `speech` [N]: 1.0 where the encoder's speech rule says speech.

Its `classes` endpoint returns the C class names, the last being "Not a speech":

    model = tf.saved_model.load(OUT)
    names = model.classes().numpy()
    outputs = model.serve(tf.constant(waveform))

The folder is written under a temporary name and renamed once complete (`brogue.atomic`).
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import ops

from brogue import atomic
from brogue.extract.engine import ExportableEncoder
from brogue.inference.run_folder import RunError
from brogue.inference.trained_run import TrainedRun, load_encoders, load_run


class OneClip(keras.layers.Layer):
    """The run's serving head on one clip: embeddings [N, D] and speech [N] -> ([C], [N, C])."""

    def __init__(self, head: keras.layers.Layer, **kwargs) -> None:
        super().__init__(**kwargs)
        self.head = head

    def call(self, embeddings, speech):
        speech = ops.expand_dims(speech, 0)
        probabilities, frame_probabilities = self.head(
            [(ops.expand_dims(embeddings, 0), speech, ops.ones_like(speech))]
        )
        return probabilities[0], frame_probabilities[0]


def waveform_model(run: TrainedRun) -> keras.Model:
    """Waveform [samples] -> {probabilities, frame_probabilities, speech}, weights loaded."""
    if len(run.encoders) > 1:
        raise RunError(f"{run.folder}: a fused run has several encoders; serve or predict it")
    (encoder,) = load_encoders(run)
    if not isinstance(encoder, ExportableEncoder):
        raise RunError(f"{run.folder}: its encoder, {encoder.name}, has no Keras graph to "
                       "export; serve it with `brogue serve` instead")  # fmt: skip
    waveform = keras.Input(batch_shape=(None,), name="waveform")
    embeddings, speech = encoder.waveform_model()(waveform)
    probabilities, frame_probabilities = OneClip(run.head, name="head")(embeddings, speech)
    outputs = {
        "probabilities": probabilities,
        "frame_probabilities": frame_probabilities,
        "speech": speech,
    }
    return keras.Model(waveform, outputs, name="brogue_accent")


def export(run_folder: Path, out: Path) -> None:
    """Write the run's waveform model to `out` as a TensorFlow SavedModel."""
    if out.exists() and any(out.iterdir()):
        raise RunError(f"{out} already holds files; choose a new export folder")
    run = load_run(run_folder)
    model = waveform_model(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_folder(out) as folder:
        _write_saved_model(model, run, folder)


def _write_saved_model(model: keras.Model, run: TrainedRun, folder: Path) -> None:
    # SavedModel is TensorFlow's format: exporting needs TensorFlow under any Keras backend.
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    waveform = tf.TensorSpec(shape=(None,), dtype=tf.float32, name="waveform")
    archive.track_and_add_endpoint("serve", model, input_signature=[waveform])
    classes = tf.function(lambda: tf.constant(run.classes))
    classes()  # traced once, so the archive takes it as it is
    archive.add_endpoint("classes", classes)
    archive.write_out(str(folder), verbose=False)
