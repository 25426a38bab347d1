"""`make bench-train`: epoch time streamed from shards against in-memory numpy arrays.

One example model (same seed, batch size and class weights) trains on a synthetic cache of
about 50,000 frames (200 MB, the extractor's 256 clips per shard), one epoch at a time from
each source in turn: `model.fit` on numpy arrays, the example's setting; the shard feed with
the data loaded once; and the shard feed with a RAM budget of a quarter of the data, so that it
streams every epoch through shuffle windows. The medians of the epoch times are compared.
Target: streamed ≤ 1.2× in-memory arrays.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from brogue.train.class_weights import class_weights, frame_counts
from brogue.train.config import TrainConfig
from brogue.train.dataset import load_corpus
from brogue.train.frame_dense import build_model
from brogue.train.keras_training import EpochTimer
from dev.synthetic_cache import SyntheticCorpus, write_synthetic_cache

BENCH_CORPUS = SyntheticCorpus(speakers=(10, 10, 20, 10), clips_per_speaker=100,
                               clips_per_shard=256)  # fmt: skip


def alternate_epochs(
    sources: dict[str, keras.utils.PyDataset | tuple],
    config: TrainConfig,
    rounds: int,
    weights: np.ndarray,
    num_classes: int,
    width: int,
) -> dict[str, list[float]]:
    """Seconds per epoch of one seeded example model, fed one epoch from each source in turn.

    Alternating on one model puts both sources under the same load from whatever else runs on
    the machine, and the first round (graph tracing) is dropped.
    """
    keras.utils.set_random_seed(config.seed)
    model = build_model(config, num_classes, width)
    seconds: dict[str, list[float]] = {name: [] for name in sources}
    for _ in range(rounds + 1):
        for name, data in sources.items():
            timer = EpochTimer()
            common = {"epochs": 1, "callbacks": [timer], "verbose": 0}
            if isinstance(data, tuple):  # Keras batches, shuffles and weights, as in the example.
                model.fit(
                    *data,
                    batch_size=config.batch_size,
                    shuffle=True,
                    class_weight=dict(enumerate(weights.tolist())),
                    **common,
                )
            else:  # The feed batches, shuffles and weights itself.
                model.fit(data, shuffle=False, **common)  # fmt: skip
            seconds[name] += timer.seconds
    return {name: values[1:] for name, values in seconds.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-train", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="epochs from each source")
    parser.add_argument(
        "--budget-share",
        type=float,
        default=0.25,
        help="streamed RAM budget as a share of the data (default 0.25)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        corpus = load_corpus(write_synthetic_cache(Path(folder), BENCH_CORPUS, seed=0))
        everything = np.ones(len(corpus.label), dtype=bool)
        config = TrainConfig()
        counts = frame_counts(corpus.label, corpus.num_frames, corpus.speech_frames,
                              len(corpus.classes))  # fmt: skip
        weights = class_weights(counts, config.class_weight)
        data_bytes = int(corpus.num_frames.sum()) * 4096
        budget = int(data_bytes * args.budget_share)
        streamed = corpus.feed(everything, config, budget, shuffle=True, class_weight=weights)
        loaded = corpus.feed(everything, config, 2 * data_bytes, shuffle=True, class_weight=weights)
        batches = [loaded[i] for i in range(len(loaded))]
        arrays = (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))
        del batches
        print(f"{streamed.frames} frames ({data_bytes / 2**20:.0f} MB) in "
              f"{len(corpus.cache.shard_paths)} shards; streamed with a {budget / 2**20:.0f} MB "
              f"budget, windows of {streamed.window_frames} frames")  # fmt: skip
        # The feed loaded once separates what streaming costs from what a PyDataset costs.
        sources = {"in-memory arrays": arrays, "feed, loaded once": loaded,
                   "streamed from shards": streamed}  # fmt: skip
        seconds = alternate_epochs(sources, config, args.rounds, weights, len(corpus.classes),
                                   corpus.embedding_size)
        times = {name: float(np.median(values)) for name, values in seconds.items()}
        for name, values in seconds.items():
            print(f"{name:22} {times[name]:6.2f} s/epoch median "
                  f"({', '.join(f'{s:.2f}' for s in values)})")  # fmt: skip
        print(f"peak streamed window memory {streamed.peak_bytes / 2**20:.0f} MB")
        ratio = times["streamed from shards"] / times["in-memory arrays"]
        print(f"streamed / in-memory: {ratio:.2f}x (target <= 1.2x)")
    return 0
