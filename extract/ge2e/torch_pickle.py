"""Read the tensors of a torch checkpoint (`torch.save`) as numpy arrays, without torch.

Both of torch's file formats are a pickle whose tensors point at storages kept outside it:
- legacy (torch < 1.6, Resemblyzer's `pretrained.pt`): five pickles in a row (magic number,
  protocol version, system info, the object, the storage keys), then each storage as an int64
  element count and its raw little-endian bytes, in the order of the keys;
- zip (torch >= 1.6): `<name>/data.pkl` beside one file per storage, `<name>/data/<key>`.

The unpickler admits only what a checkpoint of plain tensors holds (tensor rebuilders, storage
types, OrderedDict), as `torch.load(weights_only=True)` does: a pickle that names anything else
is refused instead of run.
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

from brogue.errors import BrogueError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch's legacy format opens with this pickled int
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}  # fmt: skip


class CheckpointError(BrogueError):
    """A file that is not a torch checkpoint of plain tensors; the message names it."""


class _StorageType(NamedTuple):
    dtype: np.dtype


class _Storage(NamedTuple):
    key: str
    dtype: np.dtype


class _TensorRef(NamedTuple):
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements


def _rebuild_tensor(storage, offset, shape, strides, *_):
    return _TensorRef(storage, offset, tuple(shape), tuple(strides))


def _rebuild_parameter(tensor, *_):
    return tensor


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(np.dtype(dtype)) for name, dtype in _STORAGE_DTYPES.items()},
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it pickles {module}.{name}, not plain tensors") from None

    def persistent_load(self, saved_id: tuple) -> _Storage:
        # legacy: ("storage", type, key, location, numel, view); zip: the same without view
        kind, storage_type, key = saved_id[:3]
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unknown persistent id {saved_id[:2]}")
        if len(saved_id) > 5 and saved_id[5] is not None:
            raise pickle.UnpicklingError("it holds storage views (torch < 0.4), not supported")
        return _Storage(str(key), storage_type.dtype)


def read_checkpoint(path: Path) -> Any:
    """The object `torch.save` wrote to `path`, each tensor a numpy array (a copy)."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        with open(path, "rb") as file:
            return _read_legacy(file)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, struct.error) as error:
        raise CheckpointError(f"{path}: not a torch checkpoint of tensors ({error})") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read it ({error.strerror or error})") from None


def _read_legacy(file) -> Any:
    # Every pickle of the five through the guarded unpickler: any of them could name code.
    if _Unpickler(file).load() != LEGACY_MAGIC:
        raise ValueError("no torch magic number")
    _Unpickler(file).load()  # protocol version
    if not _Unpickler(file).load().get("little_endian", True):
        raise ValueError("big-endian tensors")
    root = _Unpickler(file).load()
    data = {}
    for key in _Unpickler(file).load():
        dtype = _storage_dtypes(root)[key]
        (numel,) = struct.unpack("<q", file.read(8))
        data[key] = np.frombuffer(_read_exactly(file, numel * dtype.itemsize), dtype)
    return _resolve(root, data)


def _read_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError("no single data.pkl in the zip")
        folder = pickles[0].removesuffix("data.pkl")
        root = _Unpickler(io.BytesIO(archive.read(pickles[0]))).load()
        data = {key: np.frombuffer(archive.read(f"{folder}data/{key}"), dtype)
                for key, dtype in _storage_dtypes(root).items()}  # fmt: skip
    return _resolve(root, data)


def _read_exactly(file, size: int) -> bytes:
    chunk = file.read(size)
    if len(chunk) != size:
        raise ValueError("the file ends inside a tensor")
    return chunk


def _tensor_refs(value: Any):
    if isinstance(value, _TensorRef):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensor_refs(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensor_refs(item)


def _storage_dtypes(root: Any) -> dict[str, np.dtype]:
    return {ref.storage.key: ref.storage.dtype for ref in _tensor_refs(root)}


def _resolve(value: Any, data: dict[str, np.ndarray]) -> Any:
    """`value` with each tensor reference replaced by its array, copied out of its storage."""
    if isinstance(value, _TensorRef):
        storage = data[value.storage.key]
        last = value.offset + sum((n - 1) * s for n, s in
                                  zip(value.shape, value.strides, strict=True))
        if min(value.shape, default=1) > 0 and last >= len(storage):
            raise ValueError(f"a tensor reads past its storage {value.storage.key}")
        itemsize = storage.dtype.itemsize
        return np.lib.stride_tricks.as_strided(
            storage[value.offset:], value.shape, [s * itemsize for s in value.strides]).copy()
    if isinstance(value, dict):
        return type(value)((key, _resolve(item, data)) for key, item in value.items())
    if isinstance(value, list):
        return [_resolve(item, data) for item in value]
    if isinstance(value, tuple):
        return tuple(_resolve(item, data) for item in value)
    return value
