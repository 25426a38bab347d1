"""clip-attention: a clip's frames through a small projection into attentive statistics pooling.

Each frame is projected (Dense + ReLU, `attention_width`), a small tanh scorer weighs the
frames that pooling may use (speech frames, or all frames without one), the weighted mean and
standard deviation of the projections make the clip's vector, and a softmax tells the accents.
It trains on whole clips streamed from the shards (`train.clips`), class-weighted by clip counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from brogue.train.class_weights import class_weights
from brogue.train.config import TrainConfig
from brogue.train.dataset import Corpus
from brogue.train.keras_training import EpochHook, compile_model, train_keras
from brogue.train.pooling import AttentionWeights, PoolWeights, StatsPooling
from brogue.train.splits import Split


def build_model(config: TrainConfig, accents: int, width: int) -> keras.Model:
    frames = keras.Input((None, width), name="frames")
    speech = keras.Input((None,), name="speech")
    present = keras.Input((None,), name="present")
    allowed = PoolWeights(name="pool_weights")(speech, present)
    width, dropout = config.attention_width, config.attention_dropout
    projected = keras.layers.Dense(width, activation="relu", name="projection")(frames)
    projected = keras.layers.Dropout(dropout, name="projection_dropout")(projected)
    attention = AttentionWeights(width, name="attention")(projected, allowed)
    pooled = StatsPooling(name="statistics")(projected, attention)
    pooled = keras.layers.Dropout(dropout, name="pooled_dropout")(pooled)
    outputs = keras.layers.Dense(accents, activation="softmax", name="accent")(pooled)
    model = keras.Model([frames, speech, present], outputs, name="clip_attention")
    return compile_model(model, config)


def train(
    corpus: Corpus, split: Split, config: TrainConfig, run: Path, verbose: int,
    on_epoch: EpochHook | None,
) -> tuple[keras.Model, dict[str, Any]]:
    """Trained on the train clips, stopped and checkpointed on the valid clips."""
    counts = np.bincount(corpus.label[split.train], minlength=len(corpus.accents))
    weights = class_weights(counts, config.class_weight)
    train_budget, valid_budget = corpus.budgets(split.train, split.valid, config.ram_budget_bytes)
    train_feed = corpus.clip_feed(split.train, config, train_budget, shuffle=True,
                                  class_weight=weights)  # fmt: skip
    valid_feed = corpus.clip_feed(split.valid, config, valid_budget, shuffle=False)
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, len(corpus.accents), corpus.embedding_size)
    facts = train_keras(model, train_feed, valid_feed, config, run, verbose, on_epoch)
    return model, {
        "class_counts": dict(zip(corpus.accents, counts.tolist(), strict=True)),
        "class_weight": dict(zip(corpus.accents, weights.tolist(), strict=True)),
        **facts,
    }
