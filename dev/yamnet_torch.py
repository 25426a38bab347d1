"""YAMNet's network as a torch module, for the runtime study (`dev/network_runtimes.py`) only.

Built from brogue's own layer table (`network.YAMNET_LAYERS`) and the imported Keras model's
folded kernels (`network.layer_weights`), so it carries no architecture or weights of its own.
Keras's "same" padding puts the odd pixel of a stride-2 convolution after the input, which
torch's `padding=` cannot say, so those layers pad explicitly first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from brogue.extract.yamnet.network import LOGITS, YAMNET_LAYERS, LayerDef, layer_weights


def _same_padding(kernel: tuple[int, int], stride: int) -> tuple[int, int, int, int]:
    """Keras's "same" padding as (left, right, top, bottom), for inputs that the stride
    divides (YAMNet's 96 x 64 patches halve evenly at every stride-2 layer)."""
    (height, width) = (max(k - stride, 0) for k in kernel)
    return (width // 2, width - width // 2, height // 2, height - height // 2)


def _convolution(kernel: np.ndarray, bias: np.ndarray, stride: int, groups: int) -> nn.Module:
    """A Conv2d with ReLU on a Keras kernel [h, w, in, out] ([h, w, channels, 1] if depthwise)."""
    height, width, inputs, outputs = kernel.shape
    channels_out = inputs if groups > 1 else outputs
    layer = nn.Conv2d(inputs if groups == 1 else groups, channels_out, (height, width),
                      stride, groups=groups)  # fmt: skip
    # torch wants [out, in / groups, h, w]; a depthwise kernel's channels are its outputs.
    weight = kernel.transpose(2, 3, 0, 1) if groups > 1 else kernel.transpose(3, 2, 0, 1)
    layer.weight.data = torch.from_numpy(np.ascontiguousarray(weight))
    layer.bias.data = torch.from_numpy(bias.copy())
    return nn.Sequential(nn.ZeroPad2d(_same_padding((height, width), stride)), layer, nn.ReLU())


def _layers(name: str, layer: LayerDef, weights: dict[str, np.ndarray]) -> list[nn.Module]:
    if layer.kind == "conv":
        return [_convolution(weights[f"{name}/conv/kernel"], weights[f"{name}/conv/bias"],
                             layer.stride, 1)]  # fmt: skip
    depthwise = weights[f"{name}/depthwise_conv/kernel"]
    return [_convolution(depthwise, weights[f"{name}/depthwise_conv/bias"], layer.stride,
                         depthwise.shape[2]),
            _convolution(weights[f"{name}/pointwise_conv/kernel"],
                         weights[f"{name}/pointwise_conv/bias"], 1, 1)]  # fmt: skip


class TorchYamnet(nn.Module):
    """Patches [B, 96, 64] -> (scores [B, 521], embeddings [B, 1024]), as the Keras port."""

    def __init__(self, keras_model: Any) -> None:
        super().__init__()
        weights = {name: np.asarray(variable.numpy(), np.float32)
                   for name, variable in layer_weights(keras_model).items()}
        self.body = nn.Sequential(*[module for index, layer in enumerate(YAMNET_LAYERS, start=1)
                                    for module in _layers(f"layer{index}", layer, weights)])
        kernel = weights[f"{LOGITS}/kernel"]
        self.logits = nn.Linear(*kernel.shape)
        self.logits.weight.data = torch.from_numpy(np.ascontiguousarray(kernel.T))
        self.logits.bias.data = torch.from_numpy(weights[f"{LOGITS}/bias"].copy())

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = self.body(patches.unsqueeze(1)).mean(dim=(2, 3))
        return torch.sigmoid(self.logits(embeddings)), embeddings
