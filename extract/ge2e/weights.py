"""Import GE2E's weights from a torch checkpoint into the Keras port, once.

Where the weights come from (`resolve_handle`): a path or an http(s) URL to a checkpoint, or,
given none, the `pretrained.pt` inside the installed `resemblyzer` package (found without
importing it: its `__init__` imports torch, librosa and webrtcvad). A URL is downloaded once
into the cache (resumable, `extract/download.py`).

The checkpoint is read without torch (`torch_pickle.py`), its network's tensors converted
(`network.keras_weights`), fingerprinted by value, and kept in the weights store
(`extract/weights_store.py`) as `<cache>/ge2e/<fingerprint>.weights.h5`, so later runs load the
Keras file and never read the checkpoint again.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from brogue.errors import BrogueError

from ..weights_store import ImportedWeights, WeightsStore, fingerprint
from .params import WEIGHTS_WHEEL, Params
from .torch_pickle import read_checkpoint

WHEEL_PACKAGE, WHEEL_FILE = "resemblyzer", "pretrained.pt"
STORE = WeightsStore("ge2e")


class GE2EError(BrogueError):
    """GE2E's weights could not be found or read; the message is one line naming the handle."""


def resolve_handle(handle: str | None) -> str:
    """The handle to use: the argument (a local path made absolute), else Resemblyzer's own."""
    if handle:
        return handle if _is_url(handle) else str(Path(handle).resolve())
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GE2EError(f"GE2E's weights ship in the {WHEEL_PACKAGE} wheel: pip install "
                        f"--no-deps {WEIGHTS_WHEEL}")
    return str(Path(next(iter(spec.submodule_search_locations)), WHEEL_FILE))


def import_weights(handle: str, params: Params) -> ImportedWeights:
    """The Keras weights for `handle` (resolved), importing the checkpoint on first use."""
    checkpoint = local_checkpoint(handle)
    stamp = [checkpoint.stat().st_size, checkpoint.stat().st_mtime_ns]
    known = STORE.known(handle, stamp)
    if known:
        return known
    # Keras only from here, on first use: the OpenVINO runtime then never imports it
    # (`runtime.converted`).
    from .network import build_ge2e

    weights = checkpoint_weights(checkpoint, handle, params)
    # The network as it runs, whatever else the checkpoint held (optimizer state, training-only
    # scalars): each layer's weights by layer name and position.
    imported = STORE.weights(handle, fingerprint({
        f"{name}/{index}": value for name, values in weights.items()
        for index, value in enumerate(values)}))  # fmt: skip
    if not imported.weights_path.exists():
        model = build_ge2e(params)
        for name, values in weights.items():
            model.get_layer(name).set_weights(values)
        STORE.save(imported, model)
    STORE.remember(imported.handle, imported.fingerprint, stamp)
    return imported


def local_checkpoint(handle: str) -> Path:
    """The checkpoint file behind `handle`, downloading a URL into the cache on first use."""
    if not _is_url(handle):
        if not Path(handle).is_file():
            raise GE2EError(f"{handle}: no such checkpoint file")
        return Path(handle)
    from brogue.extract.download import download

    name = hashlib.sha256(handle.encode()).hexdigest()[:16] + ".pt"
    (STORE.folder / "downloads").mkdir(parents=True, exist_ok=True)
    return download(handle, STORE.folder / "downloads" / name, progress=False)


def checkpoint_weights(checkpoint: Path, handle: str, params: Params
                       ) -> dict[str, list[np.ndarray]]:  # fmt: skip
    """Each Keras layer's weights from the checkpoint: Resemblyzer's (`{"model_state": ...}`)
    or a bare state dict, refusing anything that is not GE2E's network."""
    from .network import build_ge2e, keras_weights

    content = read_checkpoint(checkpoint)
    state = content.get("model_state", content) if isinstance(content, dict) else None
    if not isinstance(state, dict):
        raise GE2EError(f"{handle}: holds no state dict")
    try:
        weights = keras_weights(state, params)
    except KeyError as missing:
        raise GE2EError(f"{handle} does not hold GE2E's tensors (no {missing})") from None
    except ValueError as error:  # two biases that do not add up
        raise GE2EError(f"{handle}: {error}") from None
    expected = {layer.name: [tuple(w.shape) for w in layer.weights]
                for layer in build_ge2e(params).layers if layer.weights}  # fmt: skip
    for name, shapes in expected.items():
        found = [w.shape for w in weights[name]]
        if found != shapes:
            raise GE2EError(f"{handle}: layer {name} has shapes {found}, expected {shapes}")
    return weights


def _is_url(handle: str) -> bool:
    return handle.startswith(("http://", "https://"))
