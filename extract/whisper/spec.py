"""The name `whisper:MODEL[@LAYER]`, read once, and the rule for the layer when none is given.

Layers are numbered as `hf:` numbers them: 0 is the input to the first layer (the convolutions'
output plus the positions), k is the residual stream after layer k, and the last, N, is layer
N's output through the final layer norm: what CTranslate2's `encode` returns.
"""

from __future__ import annotations

import math

from brogue.extract import layer_name
from brogue.extract.layer_name import Spec

PREFIX = "whisper:"
# The default layer: the deepest at or below three quarters of the depth (tiny.en: 3 of 4; base:
# 4 of 6). On accents-dev each model's best clip-linear layer, heard alone (docs/benchmarks.md,
# "Whisper's window and layer"): the top layers lean towards the words the decoder needs.
DEFAULT_LAYER_SHARE = 0.75


def parse(name: str) -> Spec:
    """`whisper:MODEL[@LAYER]` -> Spec; a one-line error for anything else."""
    return layer_name.parse(name, PREFIX, "whisper:tiny.en@2")


def default_layer(layers: int) -> int:
    """The layer used when the name gives none: DEFAULT_LAYER_SHARE of `layers`, rounded down."""
    return math.floor(DEFAULT_LAYER_SHARE * layers)


def name_of(model: str, layer: int) -> str:
    """The encoder's full name, with the layer always written out, as the cache records it."""
    return layer_name.name_of(PREFIX, model, layer)
