"""Speech, as the cache and the trainer understand it: one home for two rules.

- Each frame carries a speech mask, decided once at extraction by the encoder's own rule
  (YAMNet's is `scores_say_speech`, written once for numpy and for Keras ops, so that the
  exported graph runs this same definition; encoders without class scores take Silero VAD,
  `brogue.extract.vad`); readers never decide it again.
- The classes a model learns are the accents, sorted, then "Not a speech", always last: a
  frame-level model labels a non-speech frame with it, and no clip's answer is ever it.
A clip is pooled over its speech frames, or over all its frames when it has none: the trainer
does it (`inference.pooling.pool_weights` in the served graph, `train.metrics.pool` when
scoring).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

import numpy as np

NOT_SPEECH = "Not a speech"
# YAMNet's AudioSet class map opens with "Speech". Schema 2 shards stored only each frame's top
# class, so this is also how their speech mask is read.
YAMNET_SPEECH_CLASS = 0


def top_class_is_speech(top_class, ops: ModuleType = np):
    """YAMNet's speech rule: a frame is speech when its top AudioSet class is Speech. `ops` is
    numpy, or `keras.ops` inside a graph; the result is [N] bool."""
    return ops.equal(top_class, YAMNET_SPEECH_CLASS)


def scores_say_speech(scores, ops: ModuleType = np):
    """The same rule on YAMNet's class scores [N, 521]: the frames whose top class is Speech."""
    return top_class_is_speech(ops.argmax(scores, axis=-1), ops)


def model_classes(accents: Iterable[str]) -> list[str]:
    """The classes of a model trained on these accents: sorted, then "Not a speech"."""
    return [*sorted(accents), NOT_SPEECH]
