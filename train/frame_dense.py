"""frame-dense, the example's way: every frame a training example, a clip pooled from its frames.

The classifier is a dense stack described by the config's table; with the default table it is the
Keras example's model layer for layer, names included, so its summary lines up with the
example's (511,815 parameters for seven classes on YAMNet's 1024-d embeddings). Frames stream
from the shards (`train.stream`) with class weights from the cache's frame counts; a clip's
accent probabilities are its frame probabilities averaged over its speech frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from brogue.train.class_weights import class_weights, frame_counts
from brogue.train.config import TrainConfig
from brogue.train.dataset import Corpus
from brogue.train.keras_training import EpochHook, compile_model, train_keras
from brogue.train.metrics import frame_metrics, pool
from brogue.train.splits import Split
from brogue.train.stream import FrameFeed, frame_labels, read_speech


def build_model(config: TrainConfig, num_classes: int, width: int) -> keras.Model:
    """Dense+ReLU and Dropout per table row over `width`-d embeddings, then a softmax over the
    classes; compiled."""
    inputs = keras.Input(shape=(width,), name="embedding")
    x = inputs
    for number, (units, dropout) in enumerate(config.layers, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{number}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{number}")(x)
    # "ouput" is the example's spelling; keeping it keeps layer names comparable.
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="ouput")(x)
    return compile_model(keras.Model(inputs, outputs, name="accent_recognition"), config)


def _describe(feed: FrameFeed, side: str) -> str:
    if feed.resident:
        return f"{side}: {feed.frames} frames fit the RAM budget, loaded once"
    return f"{side}: {feed.frames} frames streamed from shards, windows of {feed.window_frames}"


def train(
    corpus: Corpus, split: Split, config: TrainConfig, run: Path, verbose: int,
    on_epoch: EpochHook | None,
) -> tuple[keras.Model, dict[str, Any]]:
    """The example's head trained on the split's train frames, stopped on its valid frames."""
    counts = frame_counts(
        corpus.label[split.train], corpus.num_frames[split.train],
        corpus.speech_frames[split.train], len(corpus.classes),
    )  # fmt: skip
    weights = class_weights(counts, config.class_weight)
    train_budget, valid_budget = corpus.budgets(split.train, split.valid, config.ram_budget_bytes)
    train_feed = corpus.feed(
        split.train, config, train_budget, shuffle=True,
        class_weight=weights,
    )  # fmt: skip
    valid_feed = corpus.feed(split.valid, config, valid_budget, shuffle=False)
    print(_describe(train_feed, "train"))
    print(_describe(valid_feed, "valid"))
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, len(corpus.classes), corpus.embedding_size)
    facts = train_keras(model, train_feed, valid_feed, config, run, verbose, on_epoch)
    return model, {
        "class_counts": dict(zip(corpus.classes, counts.tolist(), strict=True)),
        "class_weight": dict(zip(corpus.classes, weights.tolist(), strict=True)),
        **facts,
        "feed": {"train": _describe(train_feed, "train"), "valid": _describe(valid_feed, "valid")},
    }


def score(
    corpus: Corpus, model: keras.Model, chosen: np.ndarray, config: TrainConfig
) -> tuple[np.ndarray, dict[str, Any]]:
    """The chosen clips' accent probabilities (in table order) and the frame scores."""
    feed = corpus.feed(chosen, config, config.ram_budget_bytes, shuffle=False)
    probs = model.predict(feed, verbose=0)
    clips = np.concatenate([block.clips for block in feed.blocks])
    speech = read_speech(feed.reader, feed.blocks)
    labels = frame_labels(speech, corpus.label[clips], len(corpus.classes) - 1)
    pooled, _ = pool(probs[:, : len(corpus.accents)], clips, speech, len(corpus.label))
    return pooled[chosen], frame_metrics(labels, probs, corpus.classes)
