"""Keras layers that pool a clip's frames: statistics pooling, attention weights, serving heads.

They live with inference because a run's model.keras holds them: loading a run registers them
by importing this module (`trained_run.load_model`), and the families that build them
(`train.clip_linear`, `train.clip_attention`) import them from here.

Clip-level models take a clip as `frames` [B, T, D], `speech` [B, T] (1 where the encoder's
speech mask says speech, `brogue.cache.speech`) and `present` [B, T] (0 for padding), and pool
over the frames that `pool_weights` picks by the rule `train.metrics.pool` also follows: the
speech frames, or all frames of a clip without one.

A fused clip-level model (`train.fusion`) takes one such triple per stream, one after another:
[frames, speech, present, frames_1, speech_1, present_1, ...].

A serving head turns any family's model into one interface for `predict` and `export`: a list
of streams (embeddings [B, T, D], speech [B, T], present [B, T]), one per encoder of the run,
-> (probabilities [B, C], frame probabilities [B, T, C] on the first stream's grid, or None).
Every head ends in the run's calibration map (`inference.calibration`), so its probabilities are
the calibrated ones, and its "Not a speech" probability is 0: a clip's answer is an accent.
A frame's probabilities mean the same for every family: the run's calibrated answer for that
frame heard alone (the map was fitted on clips, not on frames). A fused model has no answer for
a frame of one encoder alone, so its head gives None for frames.
"""

from __future__ import annotations

import keras
from keras import ops

from .calibration import CalibrationMap

# Inside the square root of the pooled variance: a clip of one frame has variance 0, and the
# gradient of sqrt is infinite there.
VARIANCE_FLOOR = 1e-6


def stream_name(name: str, number: int) -> str:
    """A layer's or input's name in stream `number`: the first stream keeps the plain name, so a
    model of one cache is the model it always was."""
    return name if number == 0 else f"{name}_{number}"


def clip_inputs(widths: list[int]) -> list[keras.KerasTensor]:
    """A clip-level model's inputs: (frames, speech, present) for each stream `widths` wide."""
    return [tensor for number, width in enumerate(widths) for tensor in (
        keras.Input((None, width), name=stream_name("frames", number)),
        keras.Input((None,), name=stream_name("speech", number)),
        keras.Input((None,), name=stream_name("present", number)))]  # fmt: skip


def pool_weights(speech, present):
    """Speech frames of each clip, or all its present frames where it has none ([B, T] floats)."""
    speech = speech * present
    has_speech = ops.sum(speech, axis=1, keepdims=True) > 0
    return ops.where(has_speech, speech, present)


@keras.saving.register_keras_serializable(package="brogue")
class PoolWeights(keras.layers.Layer):
    """(speech [B, T], present [B, T]) -> the frames to pool over, as `pool_weights`."""

    def call(self, speech, present):
        return pool_weights(speech, present)

    def compute_output_shape(self, speech_shape, present_shape):
        return speech_shape


@keras.saving.register_keras_serializable(package="brogue")
class StatsPooling(keras.layers.Layer):
    """(frames [B, T, D], weights [B, T] >= 0) -> [B, 2D]: the weighted mean and std."""

    def call(self, frames, weights):
        share = weights / ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1e-12)
        share = ops.expand_dims(share, -1)
        mean = ops.sum(share * frames, axis=1)
        variance = ops.sum(share * ops.square(frames - ops.expand_dims(mean, 1)), axis=1)
        return ops.concatenate([mean, ops.sqrt(variance + VARIANCE_FLOOR)], axis=-1)

    def compute_output_shape(self, frames_shape, weights_shape):
        return (frames_shape[0], 2 * frames_shape[2])


@keras.saving.register_keras_serializable(package="brogue")
class AttentionWeights(keras.layers.Layer):
    """(frames [B, T, D], weights [B, T]) -> learned weights [B, T]: a small tanh scorer's
    softmax over the frames that `weights` allows, as in attentive statistics pooling."""

    def __init__(self, width: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.width = width
        self.hidden = keras.layers.Dense(width, activation="tanh", name="hidden")
        self.score = keras.layers.Dense(1, name="score")

    def build(self, frames_shape, weights_shape=None):
        self.hidden.build(frames_shape)
        self.score.build((*frames_shape[:-1], self.width))

    def call(self, frames, weights):
        scores = ops.squeeze(self.score(self.hidden(frames)), -1)
        allowed = weights > 0
        scores = ops.where(allowed, scores, ops.full_like(scores, -1e9))
        scores = scores - ops.max(scores, axis=1, keepdims=True)
        return ops.where(allowed, ops.exp(scores), ops.zeros_like(scores))

    def compute_output_shape(self, frames_shape, weights_shape=None):
        return frames_shape[:2]

    def get_config(self) -> dict:
        return {**super().get_config(), "width": self.width}


class _Head(keras.layers.Layer):
    """What every serving head shares: the family's model, the class count and the run's
    calibration map."""

    def __init__(self, model: keras.Model, num_classes: int, calibration: CalibrationMap,
                 **kwargs) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.model = model
        self.num_classes = num_classes
        self.calibration = calibration

    def calibrated(self, probabilities):
        """[..., C] -> the accents through the map, then "Not a speech" (the last class) 0."""
        accents = self.calibration(probabilities[..., :-1])
        return ops.concatenate([accents, ops.zeros_like(probabilities[..., -1:])], axis=-1)

    def frame_view(self, embeddings, probabilities_of):
        """`probabilities_of` applied to every frame alone, back in [B, T, C]."""
        shape = ops.shape(embeddings)
        flat = ops.reshape(embeddings, (-1, embeddings.shape[-1]))
        probabilities = probabilities_of(flat)
        return ops.reshape(probabilities, (shape[0], shape[1], self.num_classes))


class FrameHead(_Head):
    """A frame-level model (frame-dense): frame probabilities, pooled over `pool_weights`."""

    def call(self, streams):
        ((embeddings, speech, present),) = streams  # frame-level families never fuse
        frame_probabilities = self.frame_view(embeddings, self.model)
        weights = ops.expand_dims(pool_weights(speech, present), -1)
        pooled = ops.sum(frame_probabilities * weights, axis=1)
        pooled = pooled / ops.maximum(ops.sum(weights, axis=1), 1e-12)
        return self.calibrated(pooled), self.calibrated(frame_probabilities)


class ClipHead(_Head):
    """A clip-level model over (frames, speech, present) -> accent probabilities [B, A]."""

    @staticmethod
    def _with_not_speech(accents):
        return ops.pad(accents, [(0, 0), (0, 1)])  # "Not a speech", the last class, never

    def call(self, streams):
        probabilities = self.calibrated(self._with_not_speech(
            self.model([tensor for stream in streams for tensor in stream])))
        if len(streams) > 1:  # no frame of one encoder stands alone
            return probabilities, None

        def alone(flat):
            frames = ops.expand_dims(flat, 1)
            ones = ops.ones(ops.shape(frames)[:2])
            return self.calibrated(self._with_not_speech(self.model([frames, ones, ones])))

        return probabilities, self.frame_view(streams[0][0], alone)


def serving_head(model: keras.Model, num_classes: int, calibration: CalibrationMap) -> _Head:
    """The serving head of a run's model, of any family, ending in the run's `calibration`: a
    frame-level model takes one input (a frame's embedding), a clip-level one a (frames, speech,
    present) triple per stream."""
    head = FrameHead if len(model.inputs) == 1 else ClipHead
    return head(model, num_classes, calibration)
