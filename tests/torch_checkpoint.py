"""Write torch checkpoints without torch, in both of `torch.save`'s formats, for the reader's tests.

A tensor is a `TensorView` of a flat storage array (shared storages make views, as in torch);
a plain numpy array becomes a contiguous tensor of its own storage. The pickle names torch's
rebuilders and storage types as globals without importing torch: the pure-Python pickler
writes them as raw GLOBAL opcodes.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch/serialization.py's MAGIC_NUMBER, stated here again
STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
                 np.dtype(np.int64): "LongStorage", np.dtype(np.float16): "HalfStorage"}


class TensorView(NamedTuple):
    storage: np.ndarray  # 1-d
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements


class Global(NamedTuple):
    module: str
    name: str

    def __call__(self, *args):  # pickle wants a reduce function to be callable
        raise TypeError("a name to pickle, never called")


class _Storage(NamedTuple):
    key: str
    array: np.ndarray


def _view(value: np.ndarray | TensorView) -> TensorView:
    if isinstance(value, TensorView):
        return value
    value = np.ascontiguousarray(value)
    strides = tuple(s // value.itemsize for s in value.strides)
    return TensorView(value.reshape(-1), 0, value.shape, strides)


class _Pickler(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file, legacy: bool):
        super().__init__(file, protocol=2)
        self.legacy = legacy
        self.storages: dict[int, _Storage] = {}

    def _save_global_name(self, value: Global) -> None:
        self.write(pickle.GLOBAL + f"{value.module}\n{value.name}\n".encode())

    dispatch[Global] = _save_global_name

    def reducer_override(self, value: Any):
        if isinstance(value, (np.ndarray, TensorView)):
            view = _view(value)
            storage = self.storages.setdefault(
                id(view.storage), _Storage(str(len(self.storages)), view.storage))
            return (Global("torch._utils", "_rebuild_tensor_v2"),
                    (storage, view.offset, view.shape, view.strides, False,
                     collections.OrderedDict()))
        return NotImplemented

    def persistent_id(self, value: Any):
        if not isinstance(value, _Storage):
            return None
        kind = Global("torch", STORAGE_NAMES[value.array.dtype])
        saved = ("storage", kind, value.key, "cpu", value.array.size)
        return (*saved, None) if self.legacy else saved


def write_checkpoint(path: Path, content: Any, *, legacy: bool = True) -> Path:
    """`content` (dicts, lists, numbers, arrays and TensorViews) as torch.save would write it."""
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, legacy)
    pickler.dump(content)
    storages = list(pickler.storages.values())
    if legacy:
        with open(path, "wb") as file:
            for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
                pickle.dump(header, file, protocol=2)
            file.write(buffer.getvalue())
            pickle.dump([storage.key for storage in storages], file, protocol=2)
            for storage in storages:
                file.write(struct.pack("<q", storage.array.size))
                file.write(storage.array.astype(storage.array.dtype.newbyteorder("<")).tobytes())
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("checkpoint/data.pkl", buffer.getvalue())
            archive.writestr("checkpoint/version", "3\n")
            for storage in storages:
                archive.writestr(f"checkpoint/data/{storage.key}", storage.array.tobytes())
    return path


def random_ge2e_state(seed: int = 0, layers: int = 3, units: int = 256, bands: int = 40,
                      embedding: int = 256) -> dict[str, np.ndarray]:
    """A state dict named and shaped as Resemblyzer's VoiceEncoder's, random weights."""
    rng = np.random.default_rng(seed)
    state = collections.OrderedDict()
    state["similarity_weight"] = np.array([10.0], np.float32)  # training only, as in the wheel's
    for layer in range(layers):
        inputs = bands if layer == 0 else units
        for name, shape in (("weight_ih", (4 * units, inputs)), ("weight_hh", (4 * units, units)),
                            ("bias_ih", (4 * units,)), ("bias_hh", (4 * units,))):
            state[f"lstm.{name}_l{layer}"] = (rng.standard_normal(shape) * 0.1).astype(np.float32)
    state["linear.weight"] = (rng.standard_normal((embedding, units)) * 0.1).astype(np.float32)
    state["linear.bias"] = (rng.standard_normal(embedding) * 0.1).astype(np.float32)
    return state
