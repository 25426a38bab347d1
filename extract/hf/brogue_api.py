"""The one place this package touches the rest of brogue, so the layout refactor re-points it here.

- `EncodedFrames`: the Encoder protocol's output (to move to the cache package).
- `BrogueError`, `require`: one-line errors and the hint for the missing `hf` extra.
- `atomic`, `cache_root`: publishing a finished file, and where brogue keeps converted models.
- `yamnet_frame_counts`: YAMNet's frame count for a clip's length, which the hf grid shares so
  that caches of one corpus line up frame for frame and a long recording's 16 s blocks join
  exactly as YAMNet's do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from brogue import atomic
from brogue.errors import BrogueError, require
from brogue.extract.yamnet.features import patch_counts
from brogue.extract.yamnet.params import PARAMS as YAMNET_PARAMS

__all__ = ["BrogueError", "EncodedFrames", "YAMNET_PARAMS", "atomic", "cache_root", "require",
           "yamnet_frame_counts"]


class EncodedFrames(NamedTuple):
    embeddings: np.ndarray  # [N, D] float32
    speech: np.ndarray  # [N] bool: the encoder's speech rule, decided at extraction
    scores: np.ndarray | None  # [N, K] float32 class scores, or None for encoders without them


def yamnet_frame_counts(lengths: np.ndarray) -> np.ndarray:
    """Frames YAMNet gives for waveforms of `lengths` samples at 16 kHz (at least one each)."""
    return patch_counts(np.asarray(lengths), YAMNET_PARAMS)


def cache_root() -> Path:
    """brogue's cache folder. Restated from `yamnet.weights.cache_dir`, whose module imports
    Keras: the refactor should give the root one Keras-free home."""
    return Path(os.environ.get("BROGUE_CACHE", Path.home() / ".cache" / "brogue"))
