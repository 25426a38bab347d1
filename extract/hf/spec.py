"""The name `hf:MODEL[@LAYER]`, read once, and the rule for the layer when none is given."""

from __future__ import annotations

import math

from brogue.extract import layer_name
from brogue.extract.layer_name import Spec

PREFIX = "hf:"
# The default layer, as a share of the encoder's depth. Accent and other speaker traits peak in
# the upper middle of self-supervised speech models (about layer 9 of 12 in wav2vec2), and the
# top layers specialise in the pre-training target instead.
DEFAULT_LAYER_SHARE = 0.75


def parse(name: str) -> Spec:
    """`hf:MODEL[@LAYER]` -> Spec; a one-line error for anything else."""
    return layer_name.parse(name, PREFIX, "hf:facebook/wav2vec2-base@9")


def default_layer(layers: int) -> int:
    """The layer used when the name gives none: DEFAULT_LAYER_SHARE of `layers`, rounded half
    up (9 of 12, 18 of 24, 5 of 6)."""
    return math.floor(DEFAULT_LAYER_SHARE * layers + 0.5)


def name_of(model: str, layer: int) -> str:
    """The encoder's full name, with the layer always written out, as the cache records it."""
    return layer_name.name_of(PREFIX, model, layer)
