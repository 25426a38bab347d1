"""Whisper's encoder as one table of parameters, and where each lies in either weight format.

Every row names a parameter as brogue's network reads it, then its name in a CTranslate2
model.bin and in a transformers checkpoint. CTranslate2 fuses the query, key and value
projections into one matrix (rows: query, key, value); transformers keeps three, and its key
projection has no bias, which the fused bias holds as zeros. So a transformers row may list
several names, joined along axis 0, where None stands for zeros. The architecture (width, mel
bands, depth, positions) is read off the weights' shapes; only the head count is a setting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from brogue.errors import BrogueError

Source = str | tuple[str | None, ...]  # one name, or names joined along axis 0

# (brogue's name, CTranslate2's under "encoder/", transformers' under "encoder.")
STEM: tuple[tuple[str, str, Source], ...] = (
    ("conv1.weight", "conv1/weight", "conv1.weight"),  # [width, mel bands, 3]
    ("conv1.bias", "conv1/bias", "conv1.bias"),
    ("conv2.weight", "conv2/weight", "conv2.weight"),  # [width, width, 3], stride 2
    ("conv2.bias", "conv2/bias", "conv2.bias"),
    ("positions", "position_encodings/encodings", "embed_positions.weight"),  # [1500, width]
    ("final_norm.gamma", "layer_norm/gamma", "layer_norm.weight"),
    ("final_norm.beta", "layer_norm/beta", "layer_norm.bias"),
)
# (brogue's name, CTranslate2's under "encoder/layer_{i}/", transformers' under
# "encoder.layers.{i}.")
LAYER: tuple[tuple[str, str, Source], ...] = (
    ("attention_norm.gamma", "self_attention/layer_norm/gamma", "self_attn_layer_norm.weight"),
    ("attention_norm.beta", "self_attention/layer_norm/beta", "self_attn_layer_norm.bias"),
    ("qkv.weight", "self_attention/linear_0/weight",
     ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight")),
    ("qkv.bias", "self_attention/linear_0/bias",
     ("self_attn.q_proj.bias", None, "self_attn.v_proj.bias")),
    ("attention_out.weight", "self_attention/linear_1/weight", "self_attn.out_proj.weight"),
    ("attention_out.bias", "self_attention/linear_1/bias", "self_attn.out_proj.bias"),
    ("ffn_norm.gamma", "ffn/layer_norm/gamma", "final_layer_norm.weight"),
    ("ffn_norm.beta", "ffn/layer_norm/beta", "final_layer_norm.bias"),
    ("ffn_in.weight", "ffn/linear_0/weight", "fc1.weight"),
    ("ffn_in.bias", "ffn/linear_0/bias", "fc1.bias"),
    ("ffn_out.weight", "ffn/linear_1/weight", "fc2.weight"),
    ("ffn_out.bias", "ffn/linear_1/bias", "fc2.bias"),
)
CT2_PREFIX, CT2_LAYER = "encoder/", "encoder/layer_{}/"
CT2_HEADS = "encoder/num_heads"
TRANSFORMERS_PREFIX, TRANSFORMERS_LAYER = "encoder.", "encoder.layers.{}."
LAYER_NORM_EPSILON = 1e-5  # Whisper's, in every size


class EncoderWeights(NamedTuple):
    stem: dict[str, np.ndarray]  # STEM's names -> float32
    layers: list[dict[str, np.ndarray]]  # per layer, LAYER's names -> float32
    heads: int

    @property
    def width(self) -> int:
        return self.stem["conv1.weight"].shape[0]

    @property
    def mel_bands(self) -> int:
        return self.stem["conv1.weight"].shape[1]

    def arrays(self) -> list[tuple[str, np.ndarray]]:
        """Every parameter by its full name ("layers.0.qkv.weight"), in table order."""
        named = list(self.stem.items())
        for index, layer in enumerate(self.layers):
            named += [(f"layers.{index}.{name}", value) for name, value in layer.items()]
        return named


def from_ct2(variables: Mapping[str, np.ndarray], where: str) -> EncoderWeights:
    """The table from a CTranslate2 model's variables (`ct2_format.read_model`)."""
    take = _taker(variables, where)
    depth = _depth(variables, lambda index: CT2_LAYER.format(index) + LAYER[0][1])
    if CT2_HEADS not in variables:
        raise BrogueError(f"{where}: no {CT2_HEADS}; not a CTranslate2 Whisper model")
    return EncoderWeights({name: take(CT2_PREFIX + ct2) for name, ct2, _ in STEM},
                          [{name: take(CT2_LAYER.format(index) + ct2) for name, ct2, _ in LAYER}
                           for index in range(depth)],
                          int(variables[CT2_HEADS]))  # fmt: skip


def from_transformers(tensors: Mapping[str, np.ndarray], heads: int, where: str
                      ) -> EncoderWeights:
    """The table from a transformers checkpoint's tensors, of a WhisperModel ("encoder.…") or a
    WhisperForConditionalGeneration ("model.encoder.…")."""
    tensors = {name.removeprefix("model."): value for name, value in tensors.items()}
    take = _taker(tensors, where)

    def joined(prefix: str, source: Source) -> np.ndarray:
        if isinstance(source, str):
            return take(prefix + source)
        parts = [None if name is None else take(prefix + name) for name in source]
        shape = next(part.shape for part in parts if part is not None)
        return np.concatenate([np.zeros(shape, np.float32) if part is None else part
                               for part in parts])  # fmt: skip

    depth = _depth(tensors, lambda index: TRANSFORMERS_LAYER.format(index) + "fc1.weight")
    return EncoderWeights({name: joined(TRANSFORMERS_PREFIX, source) for name, _, source in STEM},
                          [{name: joined(TRANSFORMERS_LAYER.format(index), source)
                            for name, _, source in LAYER} for index in range(depth)],
                          heads)  # fmt: skip


def _taker(found: Mapping[str, np.ndarray], where: str) -> Callable[[str], np.ndarray]:
    def take(name: str) -> np.ndarray:
        if name not in found:
            raise BrogueError(f"{where}: no variable {name}; not a Whisper encoder")
        return np.asarray(found[name], np.float32)

    return take


def _depth(found: Mapping[str, np.ndarray], layer_marker: Callable[[int], str]) -> int:
    depth = 0
    while layer_marker(depth) in found:
        depth += 1
    return depth
