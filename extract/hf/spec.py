"""The name `hf:MODEL[@LAYER]`, read once, and the rule for the layer when none is given."""

from __future__ import annotations

import math
from typing import NamedTuple

from brogue.errors import BrogueError

PREFIX = "hf:"
# The default layer, as a share of the encoder's depth. Accent and other speaker traits peak in
# the upper middle of self-supervised speech models (about layer 9 of 12 in wav2vec2), and the
# top layers specialise in the pre-training target instead.
DEFAULT_LAYER_SHARE = 0.75


class Spec(NamedTuple):
    model: str  # a Hub id ("facebook/wav2vec2-base") or a local folder
    layer: int | None  # the hidden state to keep: 0 is the input to the first layer


def parse(name: str) -> Spec:
    """`hf:MODEL[@LAYER]` -> Spec; a one-line error for anything else."""
    if not name.startswith(PREFIX) or len(name) == len(PREFIX):
        raise BrogueError(f"encoder {name!r}: expected hf:MODEL or hf:MODEL@LAYER")
    model, at, layer = name[len(PREFIX) :].rpartition("@")
    if not at:
        return Spec(layer, None)  # rpartition puts a name without "@" in its last part
    if not (model and layer.isdigit()):
        raise BrogueError(f"encoder {name!r}: LAYER after @ must be a whole number, "
                          f"as in hf:facebook/wav2vec2-base@9")
    return Spec(model, int(layer))


def default_layer(layers: int) -> int:
    """The layer used when the name gives none: DEFAULT_LAYER_SHARE of `layers`, rounded half
    up (9 of 12, 18 of 24, 5 of 6)."""
    return math.floor(DEFAULT_LAYER_SHARE * layers + 0.5)


def name_of(model: str, layer: int) -> str:
    """The encoder's full name, with the layer always written out, as the cache records it."""
    return f"{PREFIX}{model}@{layer}"
