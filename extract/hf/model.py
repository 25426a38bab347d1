"""A speech model from the Hub or a folder, cut after the layer kept, and its fingerprint.

One path for a Hub id and a local folder: `from_pretrained` reads either, downloading into the
Hugging Face cache (`HF_HOME`, `HF_ENDPOINT` and `HF_HUB_OFFLINE` apply) when given an id.
The models read are wav2vec2, HuBERT, WavLM, XLS-R and Whisper's encoder (`inputs.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from brogue.errors import BrogueError, require
from brogue.extract.weights_store import fingerprint

from . import inputs
from .inputs import ConvStack, WhisperWindow
from .spec import Spec, default_layer, name_of

if TYPE_CHECKING:
    import torch


class Loaded(NamedTuple):
    name: str  # hf:MODEL@LAYER, the layer written out
    handle: str  # the Hub id or folder it was read from
    features: Any  # the checkpoint's feature extractor
    network: torch.nn.Module  # a batch (and attention mask) -> kept states [B, T, D]
    inputs: ConvStack | WhisperWindow
    layer: int
    hidden_size: int
    fingerprint: str


def load(spec: Spec) -> Loaded:
    """The model `spec` names, in eval mode, with the layers above the kept state removed."""
    transformers = require("transformers", "hf", f"the encoder hf:{spec.model}")
    require("torch", "hf", f"the encoder hf:{spec.model}")
    from .network import KeptState, layer_stack

    try:
        features = transformers.AutoFeatureExtractor.from_pretrained(spec.model)
        model = transformers.AutoModel.from_pretrained(spec.model)
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BrogueError(f"hf:{spec.model}: cannot load the model: {reason}") from None
    config = model.config
    family = inputs.of(config, features)
    if family is None:
        raise BrogueError(f"hf:{spec.model}: a {config.model_type} model, not one of wav2vec2, "
                          "HuBERT, WavLM, XLS-R or Whisper")
    # Whisper's decoder is not needed: its encoder is the network.
    network = model.get_encoder() if config.is_encoder_decoder else model
    layers = len(layer_stack(network).layers)
    layer = default_layer(layers) if spec.layer is None else spec.layer
    if not 0 <= layer <= layers:
        raise BrogueError(f"hf:{spec.model}@{layer}: the model has layers 0 to {layers}")
    fingerprint = weights_fingerprint(network)
    network.eval()
    return Loaded(name_of(spec.model, layer), spec.model, features, KeptState(network, layer),
                  family, layer, config.hidden_size, fingerprint)


def weights_fingerprint(model: torch.nn.Module) -> str:
    """The fingerprint of every tensor of the model's state dict (`weights_store.fingerprint`)."""
    return fingerprint({name: tensor.detach().cpu().numpy()
                        for name, tensor in model.state_dict().items()})
