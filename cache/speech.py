"""Speech, as the cache and the trainer understand it: one home for two rules.

- Each frame carries a speech mask, decided once at extraction by the encoder's own rule
  (YAMNet's is `top_class_is_speech`); readers never decide it again.
- The classes a model learns are the accents, sorted, then "Not a speech", always last: a
  frame-level model labels a non-speech frame with it, and no clip's answer is ever it.
A clip is pooled over its speech frames, or over all its frames when it has none: the trainer
does it (`train.pooling.pool_weights` in the served graph, `train.metrics.pool` when scoring).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

NOT_SPEECH = "Not a speech"
# YAMNet's AudioSet class map opens with "Speech". Schema 2 shards stored only each frame's top
# class, so this is also how their speech mask is read.
YAMNET_SPEECH_CLASS = 0


def top_class_is_speech(top_class: np.ndarray) -> np.ndarray:
    """YAMNet's speech rule: a frame is speech when its top AudioSet class is Speech."""
    return np.asarray(top_class) == YAMNET_SPEECH_CLASS


def model_classes(accents: Iterable[str]) -> list[str]:
    """The classes of a model trained on these accents: sorted, then "Not a speech"."""
    return [*sorted(accents), NOT_SPEECH]
