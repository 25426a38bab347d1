"""`export`: one SavedModel from a 16 kHz waveform to accent probabilities, servable without brogue.

The model chains YAMNet's one front end (`extract.yamnet.frontend`, keras.ops), the run's YAMNet
network (the native engine's Keras model, checked against the run's fingerprint, as `predict`
does; always fp32, whatever the cache's precision) and the run's serving head (any family,
`train.families`), which pools as `predict` does. Its `serve` endpoint takes a float32
waveform [samples] in [-1, 1] and returns a dict:

- `probabilities` [C]: the model's answer over the speech frames (all frames when there is
  none); the accent is the most probable of the first C - 1 classes;
- `frame_probabilities` [N, C], one row per 0.96 s frame, every 0.48 s (for a clip-level
  family, its answer for each frame alone);
- `speech` [N]: 1.0 where YAMNet's top class is Speech.

Its `classes` endpoint returns the C class names, the last being "Not a speech":

    model = tf.saved_model.load(OUT)
    names = model.classes().numpy()
    outputs = model.serve(tf.constant(waveform))
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import ops

from brogue.extract.yamnet.frontend import LogMelPatches
from brogue.extract.yamnet.params import SPEECH_CLASS
from brogue.train.fit import RunError
from brogue.train.predict import TrainedRun, load_run, load_yamnet


class SpeechMask(keras.layers.Layer):
    """YAMNet scores [N, 521] -> [N] floats, 1.0 where the top class is Speech."""

    def call(self, scores):
        return ops.cast(ops.equal(ops.argmax(scores, axis=-1), SPEECH_CLASS), "float32")

    def compute_output_shape(self, input_shape):
        return input_shape[:1]


class OneClip(keras.layers.Layer):
    """The run's serving head on one clip: embeddings [N, 1024] and speech [N] -> ([C], [N, C])."""

    def __init__(self, head: keras.layers.Layer, **kwargs) -> None:
        super().__init__(**kwargs)
        self.head = head

    def call(self, embeddings, speech):
        speech = ops.expand_dims(speech, 0)
        probabilities, frame_probabilities = self.head(
            ops.expand_dims(embeddings, 0), speech, ops.ones_like(speech)
        )
        return probabilities[0], frame_probabilities[0]


def waveform_model(run: TrainedRun) -> keras.Model:
    """Waveform [samples] -> {probabilities, frame_probabilities, speech}, weights loaded."""
    engine = load_yamnet(run)
    waveform = keras.Input(batch_shape=(None,), name="waveform")
    _, patches = LogMelPatches(engine.params, name="log_mel")(waveform)
    scores, embeddings = engine.keras_model()(patches)
    speech = SpeechMask(name="speech")(scores)
    probabilities, frame_probabilities = OneClip(run.head, name="head")(embeddings, speech)
    outputs = {
        "probabilities": probabilities,
        "frame_probabilities": frame_probabilities,
        "speech": speech,
    }
    return keras.Model(waveform, outputs, name="brogue_accent")


def export(run_folder: Path, out: Path) -> None:
    """Write the run's waveform model to `out` as a TensorFlow SavedModel."""
    # SavedModel is TensorFlow's format: exporting needs TensorFlow under any Keras backend.
    import tensorflow as tf

    if out.exists() and any(out.iterdir()):
        raise RunError(f"{out} already holds files; choose a new export folder")
    run = load_run(run_folder)
    model = waveform_model(run)
    archive = keras.export.ExportArchive()
    waveform = tf.TensorSpec(shape=(None,), dtype=tf.float32, name="waveform")
    archive.track_and_add_endpoint("serve", model, input_signature=[waveform])
    classes = tf.function(lambda: tf.constant(run.classes))
    classes()  # traced once, so the archive takes it as it is
    archive.add_endpoint("classes", classes)
    archive.write_out(str(out), verbose=False)
