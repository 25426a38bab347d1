"""A reader for CTranslate2's `model.bin`, the format faster-whisper's folders ship.

The layout (little-endian; `python/ctranslate2/specs/model_spec.py`, `_serialize`, writes it):
    u32 binary version, then the spec's name (a string) and its u32 revision;
    u32 variable count, then per variable: name, u8 rank, u32 per dimension, u8 dtype id,
        u32 byte count, the bytes (row-major);
    u32 alias count, then per alias: its name and the name of the variable it stands for.
A string is a u16 length that counts a closing NUL, then the UTF-8 bytes and the NUL. Dtype ids
follow CTranslate2's DataType enum. A quantised weight `W` (int8, or int16) comes with `W_scale`:
the float weight is `W / W_scale`, one scale per output row (axis 0) for int8 and one for the
whole tensor for int16; an alias of `W` also stands for `W_scale`. Other integer variables are
settings (`encoder/num_heads`) and are returned as they are.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from brogue.errors import BrogueError

# Versions whose variables carry a dtype id and a byte count (4) up to the newest written (6).
VERSIONS = range(4, 7)
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
SCALE_SUFFIX = "_scale"


class FormatError(BrogueError):
    """A model.bin that is not CTranslate2's format, or is cut short."""


class _Joined(io.RawIOBase):
    """Files read as one seekable stream, one after the other: a model.bin split into parts."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._files = [open(path, "rb") for path in paths]  # noqa: SIM115 (closed in close())
        self._starts = np.cumsum([0] + [os.fstat(file.fileno()).st_size for file in self._files])
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._starts[-1]}
        self._position = int(base[whence] + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer) -> int:
        part = int(np.searchsorted(self._starts, self._position, "right")) - 1
        if part >= len(self._files):
            return 0
        self._files[part].seek(self._position - int(self._starts[part]))
        count = self._files[part].readinto(buffer)
        self._position += count
        return count

    def close(self) -> None:
        for file in self._files:
            file.close()
        super().close()


class _Stored(NamedTuple):
    shape: tuple[int, ...]
    dtype: int  # CTranslate2's dtype id
    offset: int  # of its bytes in the stream
    size: int


def read_model(paths: Sequence[Path], prefix: str = "") -> dict[str, np.ndarray]:
    """The float32 variables whose names start with `prefix`, of the model.bin that `paths` hold
    in order (one path, or the parts of a split file), aliases resolved and weights
    dequantised. Only those variables' bytes are read, and those their aliases stand for."""
    where = str(paths[0]) if len(paths) == 1 else " + ".join(str(path) for path in paths)
    try:
        with io.BufferedReader(_Joined(paths), 1 << 16) as stream:
            stored, aliases = _index(stream, where)
            names = {name: name for name in stored if name.startswith(prefix)}
            names.update((alias, target) for alias, target in aliases.items()
                         if alias.startswith(prefix) and target in stored)
            for name, target in list(names.items()):
                if target + SCALE_SUFFIX in stored:  # an alias stands for the scale too
                    names[name + SCALE_SUFFIX] = target + SCALE_SUFFIX
            raw = {name: _load(stream, stored[target], name, where)
                   for name, target in names.items()}  # fmt: skip
    except OSError as error:
        raise FormatError(f"{where}: {error.strerror or error}") from None
    return {name: _as_float(raw, name) for name in raw if not name.endswith(SCALE_SUFFIX)}


def _index(stream: BinaryIO, where: str) -> tuple[dict[str, _Stored], dict[str, str]]:
    """Every variable's shape, dtype and place, and the aliases, without reading the bytes."""

    def take(size: int) -> bytes:
        data = stream.read(size)
        if len(data) != size:
            raise FormatError(f"{where}: cut short; not a whole CTranslate2 model.bin")
        return data

    def number(form: str) -> int:
        return struct.unpack("<" + form, take(struct.calcsize(form)))[0]

    def string() -> str:
        return take(number("H"))[:-1].decode("utf-8")

    version = number("I")
    if version not in VERSIONS:
        raise FormatError(f"{where}: CTranslate2 binary version {version}; brogue reads versions "
                          f"{VERSIONS.start} to {VERSIONS.stop - 1}")
    string(), number("I")  # the spec's name and revision: the variables' names say enough
    stored = {}
    for _ in range(number("I")):
        name = string()
        shape = tuple(number("I") for _ in range(number("B")))
        dtype, size = number("B"), number("I")
        stored[name] = _Stored(shape, dtype, stream.tell(), size)
        stream.seek(size, io.SEEK_CUR)
    aliases = {}
    for _ in range(number("I")):
        alias = string()
        aliases[alias] = string()
    return stored, aliases


def _load(stream: BinaryIO, stored: _Stored, name: str, where: str) -> np.ndarray:
    if stored.dtype not in _DTYPES:
        raise FormatError(f"{where}: variable {name} has unknown dtype id {stored.dtype}")
    stream.seek(stored.offset)
    data = stream.read(stored.size)
    if len(data) != stored.size:
        raise FormatError(f"{where}: cut short; not a whole CTranslate2 model.bin")
    return _array(data, _DTYPES[stored.dtype], stored.shape)


def _array(data: bytes, dtype: type | str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "bfloat16":  # the upper half of a float32: shift it back into place
        bits = np.frombuffer(data, np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(data, dtype).reshape(shape)


def _as_float(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    value = variables[name]
    scale = variables.get(name + SCALE_SUFFIX)
    if scale is not None:  # quantised: one scale per row of axis 0, or one for the tensor
        scale = scale.astype(np.float32).reshape(scale.shape + (1,) * (value.ndim - scale.ndim))
        return value.astype(np.float32) / scale
    if np.issubdtype(value.dtype, np.integer):
        return value.copy()
    return value.astype(np.float32)
