"""The model families `fit --model NAME` trains from the same cache into the same run folder.

A family is how it trains (writing model.keras; returning its facts for run.json) and how it
scores chosen clips (their accent probabilities, and frame scores where it has frames).
`predict`, `serve` and `export` serve any family's model.keras through one interface, the
serving head `brogue.inference.pooling.serving_head` picks by what the model takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from brogue.train import clip_attention, clip_linear, frame_dense
from brogue.train.config import ConfigError, TrainConfig
from brogue.train.dataset import Corpus
from brogue.train.keras_training import EpochHook
from brogue.train.splits import Split

Trainer = Callable[[Corpus, Split, TrainConfig, Path, int, EpochHook | None],
                   tuple[keras.Model, dict[str, Any]]]  # fmt: skip
Scorer = Callable[[Corpus, keras.Model, np.ndarray, TrainConfig],
                  tuple[np.ndarray, dict[str, Any] | None]]  # fmt: skip


def score_clips(
    corpus: Corpus, model: keras.Model, chosen: np.ndarray, config: TrainConfig
) -> tuple[np.ndarray, None]:
    """A clip-level model's accent probabilities for the chosen clips, in table order."""
    feed = corpus.clip_feed(chosen, config, config.ram_budget_bytes, shuffle=False)
    return model.predict(feed, verbose=0), None


@dataclass(frozen=True)
class Family:
    train: Trainer
    score: Scorer
    epochs: bool  # trains by epochs, with a validation score after each
    fuses: bool  # pools each stream of a fused corpus (`train.fusion`) on its own grid


FAMILIES = {
    "frame-dense": Family(frame_dense.train, frame_dense.score, epochs=True, fuses=False),
    "clip-linear": Family(clip_linear.train, score_clips, epochs=False, fuses=True),
    "clip-attention": Family(clip_attention.train, score_clips, epochs=True, fuses=True),
}


def check_fusion(family: str, caches: int) -> None:
    """Refuse several caches for a family that cannot fuse them."""
    if caches > 1 and not FAMILIES[family].fuses:
        raise ConfigError(f"{family} cannot fuse {caches} caches: its frames of different "
                          "encoders lie on different grids; fuse with a clip-level family "
                          f"({', '.join(name for name, f in FAMILIES.items() if f.fuses)})")
