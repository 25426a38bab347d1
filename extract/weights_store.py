"""Every encoder's weights: one fingerprint rule, and one store of imported Keras weights.

`fingerprint` names a network's weights by value: the cache's producer record carries it, and
the store, the OpenVINO IRs and the logs name files by it. An encoder that imports its weights
(from a SavedModel, a torch checkpoint) into its Keras port does it once: the store keeps them
as `<cache>/<encoder>/<fingerprint>.weights.h5`, and `handles.json` beside them maps each handle
to its fingerprint and a stamp of the source (size and mtime of a local one; None for a URL that
names an immutable version), so later runs load the Keras file and never read the source again.
hf: keeps no Keras file, only that map: a folder whose files are unchanged finds its fingerprint,
and so its OpenVINO IR, without loading the weights (`recorded`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from brogue import atomic

from .user_cache import cache_root

# Hex digits of a fingerprint: 64 bits tell apart any weights one machine will meet, and stay
# short enough for file names and a log line.
FINGERPRINT_DIGITS = 16


def fingerprint(values: Mapping[str, np.ndarray]) -> str:
    """A short hash of the named arrays' names, dtypes, shapes and values, in name order."""
    digest = hashlib.sha256()
    for name in sorted(values):
        array = np.ascontiguousarray(values[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:FINGERPRINT_DIGITS]


@dataclasses.dataclass(frozen=True)
class ImportedWeights:
    handle: str
    fingerprint: str
    weights_path: Path

    def beside(self, suffix: str) -> Path:
        """A file kept with these weights and named by their fingerprint (a class map, an IR)."""
        return self.weights_path.with_name(f"{self.fingerprint}{suffix}")


@dataclasses.dataclass(frozen=True)
class WeightsStore:
    """The imported weights of the encoder `name`, under brogue's cache folder."""

    name: str

    @property
    def folder(self) -> Path:
        return cache_root() / self.name

    def weights(self, handle: str, weights_id: str) -> ImportedWeights:
        return ImportedWeights(handle, weights_id, self.folder / f"{weights_id}.weights.h5")

    def known(self, handle: str, stamp: Any) -> ImportedWeights | None:
        """The weights imported before from `handle`, if its source still has `stamp`."""
        weights_id = self.recorded(handle, stamp)
        if weights_id is not None:
            imported = self.weights(handle, weights_id)
            if imported.weights_path.exists():
                return imported
        return None

    def recorded(self, handle: str, stamp: Any) -> str | None:
        """The fingerprint remembered for `handle`, if its source still has `stamp`."""
        entry = self._index().get(handle)
        return entry["fingerprint"] if entry and entry.get("stamp") == stamp else None

    def save(self, imported: ImportedWeights, model: Any) -> None:
        """`model`'s weights as `imported`'s file, published in one step."""
        imported.weights_path.parent.mkdir(parents=True, exist_ok=True)
        # Keras saves weights only under a name ending in .weights.h5: staged in a folder of
        # their own beside the final name, then published, so a reader never sees half a file.
        with tempfile.TemporaryDirectory(dir=imported.weights_path.parent) as folder:
            staged = Path(folder) / imported.weights_path.name
            model.save_weights(staged)
            atomic.publish(staged, imported.weights_path)

    def remember(self, handle: str, weights_id: str, stamp: Any) -> None:
        """Record that `handle`, with `stamp`, gives the weights of fingerprint `weights_id`."""
        index = self._index()
        index[handle] = {"fingerprint": weights_id, "stamp": stamp}
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.folder / "handles.json",
                          json.dumps(index, indent=1, sort_keys=True))  # fmt: skip

    def _index(self) -> dict:
        path = self.folder / "handles.json"
        return json.loads(path.read_text()) if path.exists() else {}
