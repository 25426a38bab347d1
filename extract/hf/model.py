"""A speech model from the Hub or a folder, cut after the layer kept, and its fingerprint.

One path for a Hub id and a local folder: `from_pretrained` reads either, downloading into the
Hugging Face cache (`HF_HOME`, `HF_ENDPOINT` and `HF_HUB_OFFLINE` apply) when given an id.
The models read are those with a strided convolution stack over raw 16 kHz samples and a
transformer above it: wav2vec2, HuBERT, WavLM, XLS-R.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any, NamedTuple

from .brogue_api import BrogueError, require
from .spec import Spec, default_layer, name_of

if TYPE_CHECKING:
    import torch


class ConvStack(NamedTuple):
    """The convolution stack's geometry: how many model frames a clip of n samples gives."""

    kernels: tuple[int, ...]
    strides: tuple[int, ...]

    @property
    def stride(self) -> int:
        """Samples between consecutive model frames (320: 20 ms)."""
        return math.prod(self.strides)

    @property
    def min_samples(self) -> int:
        """The receptive field of one frame (400 samples): shorter clips are zero-padded to it."""
        field = 1
        for kernel, stride in zip(reversed(self.kernels), reversed(self.strides), strict=True):
            field = (field - 1) * stride + kernel
        return field

    def count(self, samples: int) -> int:
        """Model frames from `samples` samples (at least `min_samples`)."""
        for kernel, stride in zip(self.kernels, self.strides, strict=True):
            samples = (samples - kernel) // stride + 1
        return samples


class Loaded(NamedTuple):
    name: str  # hf:MODEL@LAYER, the layer written out
    handle: str  # the Hub id or folder it was read from
    features: Any  # the checkpoint's feature extractor
    network: torch.nn.Module  # input values [B, S] (and attention mask) -> kept states [B, T, D]
    stack: ConvStack
    layer: int
    hidden_size: int
    fingerprint: str
    masks: bool  # clips of different lengths may share a call, padded and masked


def load(spec: Spec) -> Loaded:
    """The model `spec` names, in eval mode, with the layers above the kept state removed."""
    transformers = require("transformers", "hf", f"the encoder hf:{spec.model}")
    require("torch", "hf", f"the encoder hf:{spec.model}")
    from .network import KeptState
    try:
        features = transformers.AutoFeatureExtractor.from_pretrained(spec.model)
        model = transformers.AutoModel.from_pretrained(spec.model)
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BrogueError(f"hf:{spec.model}: cannot load the model: {reason}") from None
    config = model.config
    if not hasattr(config, "conv_stride"):
        raise BrogueError(f"hf:{spec.model}: a {config.model_type} model, not one of wav2vec2, "
                          "HuBERT, WavLM or XLS-R (a convolution stack over raw audio)")
    layers = config.num_hidden_layers
    layer = default_layer(layers) if spec.layer is None else spec.layer
    if not 0 <= layer <= layers:
        raise BrogueError(f"hf:{spec.model}@{layer}: the model has layers 0 to {layers}")
    fingerprint = weights_fingerprint(model)
    model.eval()
    return Loaded(name_of(spec.model, layer), spec.model, features, KeptState(model, layer),
                  ConvStack(tuple(config.conv_kernel), tuple(config.conv_stride)), layer,
                  config.hidden_size, fingerprint, bool(features.return_attention_mask))


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over every tensor of the model's state dict, by name, dtype, shape and bytes."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
