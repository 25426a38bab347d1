"""clip-linear: statistics pooling into a multinomial logistic regression with an L2 penalty.

Each clip becomes the mean and standard deviation of its frames over its speech frames (all
frames without one), computed by the same Keras layers that serve the model. scikit-learn fits
a standardiser and the regression (C = `linear_c`, class weights from the clip counts); their
weights are then carried into one Dense softmax layer, so model.keras serves like every family.
A fused corpus (`train.fusion`) pools each stream so and joins the statistics, stream by stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from brogue.inference import run_folder
from brogue.inference.pooling import PoolWeights, StatsPooling, clip_inputs, stream_name
from brogue.train.class_weights import class_weights
from brogue.train.config import TrainConfig
from brogue.train.dataset import Corpus
from brogue.train.keras_training import EpochHook
from brogue.train.splits import Split

# lbfgs iterations: the default 100 stops short of convergence on 2048 standardised features.
MAX_ITER = 2000


def _statistics(inputs: list[keras.KerasTensor]) -> keras.KerasTensor:
    """Each stream's mean and deviation over its pooled frames, streams joined in order."""
    pooled = []
    for number in range(len(inputs) // 3):
        frames, speech, present = inputs[3 * number : 3 * number + 3]
        weights = PoolWeights(name=stream_name("pool_weights", number))(speech, present)
        pooled.append(StatsPooling(name=stream_name("statistics", number))(frames, weights))
    return pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="fused")(pooled)


def carried_model(scaler: StandardScaler, regression: LogisticRegression, accents: int,
                  widths: list[int]) -> keras.Model:  # fmt: skip
    """Statistics pooling of streams `widths` wide and one Dense softmax computing `regression`
    on `scaler`'s output."""
    coef = regression.coef_
    intercept = regression.intercept_
    if coef.shape[0] == 1:  # scikit-learn keeps one row for two classes: p = sigmoid(w·x + b)
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
    kernel = np.zeros((coef.shape[1], accents))
    bias = np.full(accents, -1e9)  # an accent absent from training is never the answer
    kernel[:, regression.classes_] = (coef / scaler.scale_).T
    bias[regression.classes_] = intercept - coef @ (scaler.mean_ / scaler.scale_)
    inputs = clip_inputs(widths)
    dense = keras.layers.Dense(accents, activation="softmax", name="accent")
    model = keras.Model(inputs, dense(_statistics(inputs)), name="clip_linear")
    dense.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return model


def train(
    corpus: Corpus, split: Split, config: TrainConfig, run: Path, verbose: int,
    on_epoch: EpochHook | None,
) -> tuple[keras.Model, dict[str, Any]]:
    """Fit on the train clips' statistics; the valid clips select nothing here but C in sweeps."""
    accents = len(corpus.accents)
    counts = np.bincount(corpus.label[split.train], minlength=accents)
    weights = class_weights(counts, config.class_weight)
    inputs = clip_inputs(corpus.widths)
    statistics = keras.Model(inputs, _statistics(inputs))
    feed = corpus.clip_feed(split.train, config, config.ram_budget_bytes, shuffle=False)
    features = statistics.predict(feed, verbose=0)
    scaler = StandardScaler().fit(features)
    regression = LogisticRegression(
        C=config.linear_c, class_weight=dict(enumerate(weights.tolist())), max_iter=MAX_ITER,
        random_state=config.seed,
    ).fit(scaler.transform(features), corpus.label[split.train])  # fmt: skip
    model = carried_model(scaler, regression, accents, corpus.widths)
    model.save(run / run_folder.MODEL)
    return model, {
        "class_counts": dict(zip(corpus.accents, counts.tolist(), strict=True)),
        "class_weight": dict(zip(corpus.accents, weights.tolist(), strict=True)),
        "iterations": int(regression.n_iter_.max()),
    }
