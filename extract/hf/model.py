"""A speech model from the Hub or a folder: its facts from its JSON files, and its network.

One path for a Hub id and a local folder, as `from_pretrained` reads them: a folder is read
where it is, an id is downloaded into the Hugging Face cache (`HF_HOME`, `HF_ENDPOINT` and
`HF_HUB_OFFLINE` apply). The models read are wav2vec2, HuBERT, WavLM, XLS-R and Whisper's
encoder (`inputs.py`).

`describe` reads only config.json and preprocessor_config.json, and the weights' fingerprint
that an earlier `read` remembered for the model's files as they are (`weights_store`'s
handles.json, by each file's size and mtime): with the OpenVINO IR that fingerprint names in
brogue's cache, a run needs neither torch nor transformers (`network.load_network`). `read`
loads the weights with transformers, cut after the layer kept, and fingerprints them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from brogue.errors import BrogueError, require
from brogue.extract.weights_store import WeightsStore, fingerprint

from . import inputs
from .inputs import ConvStack, WhisperWindow
from .spec import Spec, default_layer, name_of

if TYPE_CHECKING:
    import torch

CONFIG, FEATURES = "config.json", "preprocessor_config.json"
# Where each family's config.json states its depth and its width (Whisper's: its encoder's).
_DEPTH_AND_WIDTH = {ConvStack: ("num_hidden_layers", "hidden_size"),
                    WhisperWindow: ("encoder_layers", "d_model")}
# Both feature extractors' default rate, for a preprocessor_config.json that leaves it out.
_DEFAULT_SAMPLING_RATE = 16000
STORE = WeightsStore("hf")  # handles.json: each model folder's fingerprint by its files' stamp


class Model(NamedTuple):
    name: str  # hf:MODEL@LAYER, the layer written out
    handle: str  # the Hub id or folder it was read from
    folder: Path  # the folder or the Hub snapshot its files are in
    inputs: ConvStack | WhisperWindow
    layer: int
    hidden_size: int
    sampling_rate: int
    fingerprint: str | None  # remembered for the folder's files as they are; else unknown


def describe(spec: Spec) -> Model:
    """The model `spec` names, from its JSON files and what an earlier `read` remembered."""
    try:
        config_path = _file(spec.model, CONFIG)
        config, features = json.loads(config_path.read_text()), json.loads(
            _file(spec.model, FEATURES).read_text())
    except (OSError, ValueError) as error:
        raise _cannot_load(spec.model, error) from None
    family = inputs.of(config, features)
    if family is None:
        raise BrogueError(f"hf:{spec.model}: a {config.get('model_type')} model, not one of "
                          "wav2vec2, HuBERT, WavLM, XLS-R or Whisper")
    depth, width = _DEPTH_AND_WIDTH[type(family)]
    layers = config[depth]
    layer = default_layer(layers) if spec.layer is None else spec.layer
    if not 0 <= layer <= layers:
        raise BrogueError(f"hf:{spec.model}@{layer}: the model has layers 0 to {layers}")
    folder = config_path.parent.resolve()
    return Model(name_of(spec.model, layer), spec.model, folder, family, layer, config[width],
                 features.get("sampling_rate", _DEFAULT_SAMPLING_RATE),
                 STORE.recorded(str(folder), stamp(folder)))


def read(model: Model) -> tuple[torch.nn.Module, str]:
    """`model`'s network in eval mode, a batch (and attention mask) -> the kept states
    [B, T, D] with the layers above them removed, and its weights' fingerprint, which is
    remembered for the model's files."""
    transformers = require("transformers", "hf", f"the encoder {model.name}")
    require("torch", "hf", f"the encoder {model.name}")
    from .torch_network import KeptState

    try:
        loaded = transformers.AutoModel.from_pretrained(model.handle)
    except (OSError, ValueError) as error:
        raise _cannot_load(model.handle, error) from None
    # Whisper's decoder is not needed: its encoder is the network.
    network = loaded.get_encoder() if loaded.config.is_encoder_decoder else loaded
    weights = weights_fingerprint(network)
    STORE.remember(str(model.folder), weights, stamp(model.folder))
    return KeptState(network.eval(), model.layer), weights


def stamp(folder: Path) -> list[list[Any]]:
    """Name, size and mtime of each file in `folder` (a Hub snapshot's links followed to their
    files): while they stay the same, so do the weights."""
    return [[path.name, path.stat().st_size, path.stat().st_mtime_ns]
            for path in sorted(folder.iterdir()) if path.is_file()]


def weights_fingerprint(model: torch.nn.Module) -> str:
    """The fingerprint of every tensor of the model's state dict (`weights_store.fingerprint`)."""
    return fingerprint({name: tensor.detach().cpu().numpy()
                        for name, tensor in model.state_dict().items()})


def _file(model: str, name: str) -> Path:
    """File `name` of `model`: in the folder, or downloaded from the Hub (as `from_pretrained`
    tells them apart: a folder is a name that is one)."""
    if Path(model).is_dir():
        return Path(model) / name
    hub = require("huggingface_hub", "hf", f"the encoder hf:{model}")
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hub.hf_hub_download(model, name))
    except EntryNotFoundError as error:  # not an OSError, unlike the Hub's other answers
        raise OSError(str(error)) from None


def _cannot_load(model: str, error: Exception) -> BrogueError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return BrogueError(f"hf:{model}: cannot load the model: {reason}")
