"""Import YAMNet weights from a TF Hub SavedModel into the Keras port, once.

The SavedModel's variables (`layer1/conv/kernel:0`, ..., `dense/bias:0`) are
fingerprinted by value, their BatchNorm folded into the convolutions, copied into
the Keras layer table, and kept in the weights store (`extract/weights_store.py`) as
`<cache>/yamnet/<fingerprint>.weights.h5` with the class map beside it, so later runs, and
the jax backend on machines without TensorFlow, load the Keras file and never touch TF Hub.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from brogue import atomic
from brogue.errors import BrogueError, require

from ..weights_store import ImportedWeights, WeightsStore, fingerprint
from .params import DEFAULT_HANDLE, Params

STORE = WeightsStore("yamnet")
CLASS_MAP = ".class_map.csv"  # beside the weights: the AudioSet names of the scores' columns


class YamnetError(BrogueError):
    """YAMNet could not be loaded; the message is one line naming the handle."""


def resolve_handle(handle: str | None) -> str:
    """The handle to use: the argument, else $BROGUE_YAMNET, else TF Hub's YAMNet."""
    chosen = handle or os.environ.get("BROGUE_YAMNET") or DEFAULT_HANDLE
    return str(Path(chosen).resolve()) if os.path.isdir(chosen) else chosen


def saved_model_dir(handle: str) -> Path:
    """A local SavedModel folder for the handle, downloading it through TF Hub's cache."""
    if os.path.isdir(handle):
        return Path(handle)
    with warnings.catch_warnings():
        # tensorflow-hub imports pkg_resources, which warns of its own removal on import.
        warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
        hub = require("tensorflow_hub", "hub", f"YAMNet from the URL {handle}")
    try:
        return Path(hub.resolve(handle))
    except Exception as error:  # TF Hub raises many types; the person needs one line
        raise YamnetError(f"cannot load YAMNet from {handle}: {_first_line(error)}") from error


def load_saved_model(handle: str):
    """The SavedModel behind `handle`, as `hub.load` gives it, with a one-line error."""
    import tensorflow as tf

    try:
        return tf.saved_model.load(str(saved_model_dir(handle)))
    except YamnetError:
        raise
    except Exception as error:
        raise YamnetError(f"cannot load YAMNet from {handle}: {_first_line(error)}") from error


def named_variables(saved_model) -> dict[str, np.ndarray]:
    """Every variable of a loaded SavedModel by its name without the `:0` suffix."""
    import tensorflow as tf

    variables = (
        node for node in tf.train.TrackableView(saved_model).descendants()
        if isinstance(node, tf.Variable)
    )
    return {variable.name.removesuffix(":0"): variable.numpy() for variable in variables}


def fold_batch_norm(values: dict[str, np.ndarray], params: Params) -> dict[str, np.ndarray]:
    """Checkpoint variables -> the folded network's kernels and biases.

    BatchNorm with `center=True, scale=False` computes (x - mean) / sqrt(var + eps) + beta,
    which is linear per output channel, so it moves into the convolution before it.
    """
    folded = {}
    for name in values:
        if not name.endswith("/bn/beta"):
            continue
        conv = name.removesuffix("/bn/beta")
        scale = 1.0 / np.sqrt(values[f"{conv}/bn/moving_variance"] + params.batchnorm_epsilon)
        kernel_name = "depthwise_kernel" if conv.endswith("depthwise_conv") else "kernel"
        kernel = values[f"{conv}/{kernel_name}"]
        # Depthwise kernels are [h, w, channels, 1]: the channel axis is the third.
        channel_scale = scale[:, None] if kernel_name == "depthwise_kernel" else scale
        folded[f"{conv}/kernel"] = (kernel * channel_scale).astype(np.float32)
        folded[f"{conv}/bias"] = (values[name] - values[f"{conv}/bn/moving_mean"] * scale).astype(
            np.float32
        )
    folded["dense/kernel"] = values["dense/kernel"]
    folded["dense/bias"] = values["dense/bias"]
    return folded


def assign_weights(model, values: dict[str, np.ndarray], handle: str, params: Params) -> None:
    """Fold the checkpoint's variables into `model`, refusing anything that is not YAMNet."""
    from .network import layer_weights

    targets = layer_weights(model)
    try:
        folded = fold_batch_norm(values, params)
    except KeyError as missing:
        raise YamnetError(f"{handle} does not hold YAMNet's variables (no {missing})") from None
    if set(targets) != set(folded):
        odd = sorted(set(targets) ^ set(folded))
        raise YamnetError(f"{handle} does not hold YAMNet's variables (e.g. {odd[0]})")
    for name, variable in targets.items():
        if tuple(variable.shape) != folded[name].shape:
            raise YamnetError(
                f"{handle}: variable {name} has shape {folded[name].shape}, "
                f"expected {tuple(variable.shape)}"
            )
        variable.assign(folded[name])


def import_weights(handle: str, params: Params) -> ImportedWeights:
    """The Keras weights for `handle`, importing them from the SavedModel on first use."""
    known = STORE.known(handle, _stamp(handle))
    if known:
        return known
    saved_model = load_saved_model(handle)
    values = named_variables(saved_model)
    imported = STORE.weights(handle, fingerprint(values))
    if not imported.weights_path.exists():
        from .network import build_yamnet  # Keras, here only: a cached import needs none

        model = build_yamnet(params)
        assign_weights(model, values, handle, params)
        imported.weights_path.parent.mkdir(parents=True, exist_ok=True)
        # The class map first: a reader who finds the weights finds it too.
        with atomic.atomic_path(imported.beside(CLASS_MAP)) as temporary:
            shutil.copyfile(saved_model.class_map_path().numpy().decode(), temporary)
        STORE.save(imported, model)
    STORE.remember(imported.handle, imported.fingerprint, _stamp(handle))
    return imported


def _stamp(handle: str) -> list[int] | None:
    """Size and mtime of a local SavedModel's variables, so an edited folder is re-imported.

    Hub URLs name immutable versions, so they need no stamp.
    """
    if not os.path.isdir(handle):
        return None
    files = sorted((Path(handle) / "variables").glob("*"))
    return [value for f in files for value in (f.stat().st_size, f.stat().st_mtime_ns)]


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
