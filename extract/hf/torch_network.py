"""The model's network in torch, and its conversion to OpenVINO: the part of hf: that needs
torch, which a run on an IR already in the cache never imports (`network.load_network`).

`KeptState` keeps hidden state k and drops the layers above it. The OpenVINO network is the
same module converted by `openvino.convert_model` (its PyTorch frontend).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from brogue import atomic


class KeptState(torch.nn.Module):
    """`model` giving only hidden state `layer` [B, T, D], without the layers it does not need.

    hidden_states[k] is the input of layer k for every k below the depth, in every family; only
    the last state may pass through a final layer norm (the stable-layer-norm models, such as
    XLS-R). So the stack keeps layer `layer` too when it is not the last: one layer more than
    strictly needed, and the state is the full model's bit for bit.
    """

    def __init__(self, model: torch.nn.Module, layer: int) -> None:
        super().__init__()
        stack = layer_stack(model)
        stack.layers = stack.layers[: min(layer + 1, len(stack.layers))]
        self.model, self.layer = model, layer

    def forward(self, values: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        return self.model(values, attention_mask=attention_mask,
                          output_hidden_states=True).hidden_states[self.layer]


def layer_stack(model: torch.nn.Module) -> torch.nn.Module:
    """The module holding the transformer's `layers`: the model's encoder, or Whisper's encoder
    itself."""
    return getattr(model, "encoder", model)


class TorchNetwork:
    runtime = "torch"

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module

    def __call__(self, values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(values),
                               None if mask is None else torch.from_numpy(mask)).numpy()


def convert(module: torch.nn.Module, example: tuple[np.ndarray, np.ndarray | None], xml: Path
            ) -> Path:
    """`module` as the OpenVINO IR `xml`, traced on `example` (a batch as the encoder builds
    them; batch size and length stay free), fp32 weights as they are."""
    import openvino as ov

    xml.parent.mkdir(parents=True, exist_ok=True)
    with atomic.openvino_ir(xml) as temporary, torch.inference_mode():
        model = ov.convert_model(module, example_input=tuple(
            torch.from_numpy(array) for array in example if array is not None))
        ov.save_model(model, temporary, compress_to_fp16=False)
    return xml
