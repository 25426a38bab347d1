"""The model as a network of one output, run by torch or by OpenVINO.

`KeptState` keeps hidden state k and drops the layers above it. The OpenVINO network is the
same module converted by `openvino.convert_model` (its PyTorch frontend), compiled for fp32:
OpenVINO would otherwise pick bf16 by itself on a CPU that has it. Converting wav2vec2-base took
55-106 s here, so the IR is kept in brogue's cache, keyed by weights, layer and OpenVINO version.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from brogue import atomic
from brogue.extract.runtime import openvino_hints
from brogue.extract.user_cache import cache_root


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


class OpenVINONetwork:
    runtime = "openvino"

    def __init__(self, xml: Path) -> None:
        import openvino as ov

        self._compiled = ov.Core().compile_model(xml, "CPU", openvino_hints("fp32", streams=False))

    def __call__(self, values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        inputs = [values] if mask is None else [values, mask.astype(np.int64)]
        return self._compiled(inputs)[0]


def converted(module: torch.nn.Module, example: tuple[np.ndarray, np.ndarray | None], key: str
              ) -> Path:
    """The OpenVINO IR of `module`, traced on `example` (a batch as the encoder builds them;
    batch size and length stay free), converted on first use and kept as `key`."""
    import openvino as ov

    xml = cache_root() / "hf" / f"{key}-{'masked' if example[1] is not None else 'unmasked'}" \
        f".openvino-{version('openvino')}.xml"
    if not xml.exists():
        xml.parent.mkdir(parents=True, exist_ok=True)
        with atomic.openvino_ir(xml) as temporary, torch.inference_mode():
            model = ov.convert_model(module, example_input=tuple(
                torch.from_numpy(array) for array in example if array is not None))
            ov.save_model(model, temporary, compress_to_fp16=False)
    return xml


def load_network(module: torch.nn.Module, runtime: str,
                 example: tuple[np.ndarray, np.ndarray | None], key: str
                 ) -> TorchNetwork | OpenVINONetwork:
    """`module` in `runtime` (resolved); `key` names its OpenVINO IR in the cache."""
    if runtime == "torch":
        return TorchNetwork(module)
    return OpenVINONetwork(converted(module, example, key))
