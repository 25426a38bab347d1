"""The model as a network of one output, run by torch or by OpenVINO.

The OpenVINO network is the model's torch module converted (`torch_network.convert`), compiled
for fp32: OpenVINO would otherwise pick bf16 by itself on a CPU that has it. Converting
wav2vec2-base took 55-106 s here, so the IR is kept in brogue's cache, keyed by weights, layer
and OpenVINO version. A run that finds it, with the weights' fingerprint remembered for the
model's files (`model.describe`), imports neither torch nor transformers: a 3-hour recording's
peak went from 726 to 282 MB (docs/benchmarks.md).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from brogue.extract.runtime import openvino_hints
from brogue.extract.user_cache import cache_root

from .inputs import Batch
from .model import Model, read

if TYPE_CHECKING:
    from .torch_network import TorchNetwork


class OpenVINONetwork:
    runtime = "openvino"

    def __init__(self, xml: Path) -> None:
        import openvino as ov

        self._compiled = ov.Core().compile_model(xml, "CPU", openvino_hints("fp32", streams=False))

    def __call__(self, values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        inputs = [values] if mask is None else [values, mask.astype(np.int64)]
        return self._compiled(inputs)[0]


def ir_path(weights: str, layer: int, masked: bool) -> Path:
    """Where the OpenVINO IR of the weights of fingerprint `weights`, cut at `layer`, is kept."""
    return cache_root() / "hf" / f"{weights}-layer{layer}-{'masked' if masked else 'unmasked'}" \
        f".openvino-{version('openvino')}.xml"


def load_network(model: Model, runtime: str, example: Batch
                 ) -> tuple[TorchNetwork | OpenVINONetwork, str]:
    """`model`'s network in `runtime` (resolved), and its weights' fingerprint. `example` is a
    batch as the encoder builds them, which OpenVINO's conversion traces."""
    masked = example[1] is not None
    if runtime == "openvino" and model.fingerprint is not None:
        xml = ir_path(model.fingerprint, model.layer, masked)
        if xml.exists():
            return OpenVINONetwork(xml), model.fingerprint
    from .torch_network import TorchNetwork, convert

    module, weights = read(model)
    if runtime == "torch":
        return TorchNetwork(module), weights
    xml = ir_path(weights, model.layer, masked)
    return OpenVINONetwork(xml if xml.exists() else convert(module, example, xml)), weights
