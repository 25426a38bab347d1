"""The names of encoders that keep one hidden layer of a model, PREFIX MODEL[@LAYER] (`hf:`,
`whisper:`), read and written in one place; each family keeps its own prefix and default layer.
"""

from __future__ import annotations

from typing import NamedTuple

from brogue.errors import BrogueError


class Spec(NamedTuple):
    model: str  # a Hub id, a folder, or a name the family bundles
    layer: int | None  # the hidden state to keep (0 is the input to the first layer); None: default


def parse(name: str, prefix: str, example: str) -> Spec:
    """`PREFIX MODEL[@LAYER]` -> Spec; a one-line error, citing `example`, for anything else."""
    if not name.startswith(prefix) or len(name) == len(prefix):
        raise BrogueError(f"encoder {name!r}: expected {prefix}MODEL or {prefix}MODEL@LAYER")
    model, at, layer = name[len(prefix) :].rpartition("@")
    if not at:
        return Spec(layer, None)  # rpartition puts a name without "@" in its last part
    if not (model and layer.isdigit()):
        raise BrogueError(f"encoder {name!r}: LAYER after @ must be a whole number, "
                          f"as in {example}")
    return Spec(model, int(layer))


def name_of(prefix: str, model: str, layer: int) -> str:
    """The encoder's full name, with the layer always written out, as the cache records it."""
    return f"{prefix}{model}@{layer}"
