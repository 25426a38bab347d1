"""clip-attention: a clip's frames through a small projection into attentive statistics pooling.

Each frame is projected (Dense + ReLU, `attention_width`), a small tanh scorer weighs the
frames that pooling may use (speech frames, or all frames without one), the weighted mean and
standard deviation of the projections make the clip's vector, and a softmax tells the accents.
It trains on whole clips streamed from the shards (`train.clips`), class-weighted by clip counts.
A fused corpus (`train.fusion`) gives each stream its own projection and attention, and joins
the pooled vectors before the softmax.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from brogue.inference.pooling import (
    AttentionWeights,
    PoolWeights,
    StatsPooling,
    clip_inputs,
    stream_name,
)
from brogue.train.class_weights import class_weights
from brogue.train.config import TrainConfig
from brogue.train.dataset import Corpus
from brogue.train.keras_training import EpochHook, compile_model, train_keras
from brogue.train.splits import Split


def _pooled(config: TrainConfig, stream: list[keras.KerasTensor], number: int
            ) -> keras.KerasTensor:  # fmt: skip
    """Stream `number`'s (frames, speech, present) projected and pooled by its own attention."""
    frames, speech, present = stream
    width, dropout = config.attention_width, config.attention_dropout

    def name(plain: str) -> str:
        return stream_name(plain, number)

    allowed = PoolWeights(name=name("pool_weights"))(speech, present)
    projected = keras.layers.Dense(width, activation="relu", name=name("projection"))(frames)
    projected = keras.layers.Dropout(dropout, name=name("projection_dropout"))(projected)
    attention = AttentionWeights(width, name=name("attention"))(projected, allowed)
    return StatsPooling(name=name("statistics"))(projected, attention)


def build_model(config: TrainConfig, accents: int, widths: list[int]) -> keras.Model:
    """The model over streams `widths` wide (one, unless fused)."""
    inputs = clip_inputs(widths)
    pooled = [_pooled(config, inputs[3 * number : 3 * number + 3], number)
              for number in range(len(widths))]  # fmt: skip
    dropout = config.attention_dropout
    joined = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="fused")(pooled)
    joined = keras.layers.Dropout(dropout, name="pooled_dropout")(joined)
    outputs = keras.layers.Dense(accents, activation="softmax", name="accent")(joined)
    model = keras.Model(inputs, outputs, name="clip_attention")
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
    model = build_model(config, len(corpus.accents), corpus.widths)
    facts = train_keras(model, train_feed, valid_feed, config, run, verbose, on_epoch)
    return model, {
        "class_counts": dict(zip(corpus.accents, counts.tolist(), strict=True)),
        "class_weight": dict(zip(corpus.accents, weights.tolist(), strict=True)),
        **facts,
    }
