"""The trainer's parts without a fit: config, model, splits, class weights, streaming, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from brogue.train.class_weights import class_weights, frame_counts
from brogue.train.config import ConfigError, TrainConfig, load_config, make_config, parse_layers
from brogue.train.dataset import load_corpus
from brogue.train.frame_dense import build_model
from brogue.train.metrics import d_prime, majority_baseline, pool
from brogue.train.splits import (
    SplitError,
    SplitWarning,
    example_holdout,
    make_splits,
    speaker_folds,
    speaker_holdout,
)
from brogue.train.stream import FrameFeed, read_speech
from dev.synthetic_cache import SyntheticCorpus, write_synthetic_cache

OPENSLR83_INDEX = Path(__file__).parents[2] / "shared" / "openslr83" / "line_index_all.csv"
# The first rows of the example's shuffled table, as its notebook prints them.
EXAMPLE_HEAD = [
    "som_03853_01027933689",
    "som_04310_01833253760",
    "sof_06136_01210700905",
    "som_02484_00261230384",
    "nom_06136_00616878975",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("cache")
    return load_corpus(write_synthetic_cache(directory, SyntheticCorpus(), seed=0))


def test_default_config_is_the_examples() -> None:
    config = TrainConfig()
    assert config.layers == ((256, 0.15), (384, 0.2), (192, 0.25), (384, 0.2))
    assert (config.learning_rate, config.batch_size, config.epochs) == (1.9644e-5, 64, 100)
    assert (config.split, config.class_weight, config.patience) == ("speaker", "example", 10)


def test_config_file_with_flags_on_top(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"epochs": 5, "layers": [[32, 0.1]], "batch_size": 16}))
    config = load_config(path, {"epochs": 7})
    assert (config.epochs, config.layers, config.batch_size) == (7, ((32, 0.1),), 16)
    assert parse_layers("256:0.15,384:0.2") == ((256, 0.15), (384, 0.2))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epoch": 3}, "unknown setting"),
        ({"split": "files"}, "split must be one of"),
        ({"layers": [[64, 1.5]]}, "dropouts in"),
        ({"folds": 3, "split": "random"}, "folds must be 1 with split=random"),
    ],
)
def test_bad_config_is_one_line(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        make_config(values)
    assert "\n" not in str(error.value)


def test_default_model_matches_the_examples_summary() -> None:
    model = build_model(TrainConfig(), num_classes=7, width=1024)
    assert model.count_params() == 511_815
    names = [layer.name for layer in model.layers]
    assert names[1:3] == ["dense_1", "dropout_1"] and names[-1] == "ouput"


def test_speaker_holdout_keeps_each_accent_on_both_sides() -> None:
    speakers = {f"ir{i}": "Irish" for i in range(3)} | {f"so{i}": "Southern" for i in range(40)}
    valid = speaker_holdout(speakers, 0.1, seed=3)
    assert sum(s.startswith("ir") for s in valid) == 1
    assert sum(s.startswith("so") for s in valid) == 4
    assert valid == speaker_holdout(speakers, 0.1, seed=3)
    assert valid != speaker_holdout(speakers, 0.1, seed=4)


def test_a_single_speaker_accent_warns_and_trains() -> None:
    with pytest.warns(SplitWarning, match="'Welsh' has a single speaker"):
        valid = speaker_holdout({"a": "Irish", "b": "Irish", "w": "Welsh"}, 0.5, seed=0)
    assert "w" not in valid


def test_speaker_folds_validate_every_speaker_once() -> None:
    speakers = {f"s{i}": ["Irish", "Welsh", "Southern"][i % 3] for i in range(14)}
    folds = speaker_folds(speakers, 4, seed=1)
    flat = [speaker for fold in folds for speaker in fold]
    assert sorted(flat) == sorted(speakers) and len(flat) == len(set(flat))
    assert sorted(len(fold) for fold in folds) == [3, 3, 4, 4]


def pandas_validated(rows: list[str], valid_ratio: float, seed: int) -> set[str]:
    """The rows the Keras example validates on, the example's own way: pandas shuffles the
    table with `sample(frac=1, random_state=seed)`, the first `int(n * (1 - valid_ratio))`
    rows train and the rest validate."""
    import pandas as pd

    shuffled = pd.DataFrame({"row": rows}).sample(frac=1, random_state=seed)["row"].tolist()
    return set(shuffled[int(len(rows) * (1 - valid_ratio)) :])


@pytest.mark.skipif(not OPENSLR83_INDEX.is_file(), reason="needs ../shared/openslr83")
def test_random_split_is_the_examples_on_the_real_index() -> None:
    from brogue.openslr83 import parse_openslr83_index

    rows = [row["file_id"] for row in parse_openslr83_index(OPENSLR83_INDEX)]
    valid = set(example_holdout(rows, 0.1, seed=1337))
    assert (len(rows) - len(valid), len(valid)) == (16089, 1788)
    assert not valid & set(EXAMPLE_HEAD)  # the head of the example's table trains
    assert valid == pandas_validated(rows, 0.1, seed=1337)


def test_example_holdout_is_the_examples_pandas_split() -> None:
    rows = [f"row{i:03d}" for i in range(203)]
    valid = example_holdout(rows, 0.1, seed=1337)

    assert len(valid) == 203 - int(203 * 0.9) == 21 and len(set(valid)) == 21
    assert set(valid) <= set(rows)
    assert set(valid) == pandas_validated(rows, 0.1, seed=1337)
    assert example_holdout(rows, 0.1, seed=1337) == valid
    assert set(example_holdout(rows, 0.1, seed=7)) != set(valid)
    assert len(example_holdout(rows, 0.25, seed=1337)) == 203 - int(203 * 0.75)


def test_random_split_without_an_index_uses_cache_order(corpus) -> None:
    (split,) = make_splits(corpus, make_config({"split": "random"}), index=None)
    keys = corpus.key.tolist()
    assert len(keys) == 114  # SyntheticCorpus: 3 + 4 + 8 + 4 speakers x 6 clips

    assert set(corpus.key[split.valid]) == pandas_validated(keys, 0.1, seed=1337)
    assert split.valid.sum() == 12  # 114 - int(114 * 0.9)
    assert not (split.valid & split.train).any() and (split.valid | split.train).all()
    assert not split.test.any()  # the example's split has two sides
    (again,) = make_splits(corpus, make_config({"split": "random"}), index=None)
    np.testing.assert_array_equal(again.valid, split.valid)
    (other,) = make_splits(corpus, make_config({"split": "random", "seed": 7}), index=None)
    assert (other.valid != split.valid).any()


def test_random_split_follows_the_index_order(corpus, tmp_path: Path) -> None:
    # An index listing the cache's clips shuffled, and rows the cache lacks (failed or unused).
    rows = np.random.default_rng(5).permutation([*corpus.stem, "wem_99999_00000000001"]).tolist()
    index = tmp_path / "line_index_all.csv"
    index.write_text("".join(f"EN{i:04d}, {row}, Some text\n" for i, row in enumerate(rows)))
    config = make_config({"split": "random", "seed": 7})
    (split,) = make_splits(corpus, config, index=index)

    expected = pandas_validated(rows, 0.1, seed=7) - {"wem_99999_00000000001"}
    assert set(corpus.stem[split.valid]) == expected
    # The index's order, not the cache's, decides: the same clips in cache order split otherwise.
    (cache_order,) = make_splits(corpus, config, index=None)
    assert (cache_order.valid != split.valid).any()
    assert split.to_json(corpus)["index"] == str(index)
    index.write_text("".join(f"EN{i:04d}, {row}, Text\n" for i, row in enumerate(rows[1:])))
    with pytest.raises(SplitError, match="lacks 1 of the cache's clips"):
        make_splits(corpus, config, index=index)


def test_speaker_split_is_speaker_disjoint_seeded_and_proportioned(corpus) -> None:
    (split,) = make_splits(corpus, make_config({}), index=None)
    sides = {name: set(corpus.speaker[mask]) for name, mask in split.sides()}

    assert set(sides) == {"train", "valid", "test"}
    assert not sides["train"] & sides["valid"] and not sides["train"] & sides["test"]
    assert not sides["valid"] & sides["test"]
    assert (split.train | split.valid | split.test).all()
    # 19 speakers in 4 accents of 3, 4, 8 and 4: 10% of each, at least one, on valid and test.
    assert len(sides["valid"]) == len(sides["test"]) == 4
    labels = corpus.speaker_labels()
    for side in ("valid", "test"):
        assert sorted(labels[s] for s in sides[side]) == sorted(set(labels.values()))
    (again,) = make_splits(corpus, make_config({}), index=None)
    np.testing.assert_array_equal(again.test, split.test)
    np.testing.assert_array_equal(again.valid, split.valid)
    (other,) = make_splits(corpus, make_config({"seed": 1}), index=None)
    assert (other.test != split.test).any() or (other.valid != split.valid).any()


def test_class_weights_match_a_count_by_hand(corpus) -> None:
    (split,) = make_splits(corpus, make_config({}), index=None)
    counts = frame_counts(
        corpus.label[split.train],
        corpus.num_frames[split.train],
        corpus.speech_frames[split.train],
        len(corpus.classes),
    )
    by_hand = np.zeros(len(corpus.classes), dtype=np.int64)
    for clip in np.flatnonzero(split.train):
        start = corpus.frame_start[clip]
        frames = corpus.cache.read_frames(
            corpus.shard[clip], start, start + corpus.num_frames[clip], ("speech",)
        )
        for speech in frames["speech"]:
            by_hand[corpus.label[clip] if speech else len(corpus.classes) - 1] += 1
    np.testing.assert_array_equal(counts, by_hand)
    # The same numbers as the manifest's per-speaker counts over the training speakers.
    speakers = corpus.cache.manifest["speakers"]
    trained = [speakers[s] for s in set(corpus.speaker[split.train])]
    for accent, count in zip(corpus.accents, counts, strict=False):
        assert count == sum(s["speech_frames"] for s in trained if s["label"] == accent)
    assert counts[-1] == sum(s["frames"] - s["speech_frames"] for s in trained)
    np.testing.assert_allclose(class_weights(counts, "example"), by_hand.sum() / by_hand)
    balanced = class_weights(counts, "balanced")
    np.testing.assert_allclose(balanced, by_hand.sum() / (len(by_hand) * by_hand))
    np.testing.assert_allclose(class_weights(np.array([3, 0, 1]), "example"), [4 / 3, 0, 4])


def _epoch(feed: FrameFeed) -> tuple[np.ndarray, np.ndarray]:
    batches = [feed[i] for i in range(len(feed))]
    feed.on_epoch_end()
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def _expected_frames(corpus, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every chosen frame read one clip at a time, with its label by the example's rule."""
    embeddings, labels = [], []
    for clip in np.flatnonzero(chosen):
        start = corpus.frame_start[clip]
        frames = corpus.cache.read_frames(
            corpus.shard[clip], start, start + corpus.num_frames[clip]
        )
        embeddings.append(frames["embeddings"])
        # The example's rule: a frame that is not speech is "Not a speech".
        labels.append(np.where(frames["speech"], corpus.label[clip], len(corpus.accents)))
    return np.concatenate(embeddings), np.concatenate(labels)


def _sorted_rows(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    rows = np.column_stack([labels, embeddings])
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("budget_mb", [64.0, 1.0])
def test_each_training_frame_comes_once_per_epoch(corpus, budget_mb: float) -> None:
    config = make_config({"batch_size": 32, "block_frames": 48, "ram_budget_mb": budget_mb})
    (split,) = make_splits(corpus, config, index=None)
    feed = corpus.feed(split.train, config, config.ram_budget_bytes, shuffle=True)
    data_bytes = feed.frames * 4096
    assert feed.resident == (data_bytes < config.ram_budget_bytes)
    expected = _sorted_rows(*_expected_frames(corpus, split.train))
    first, second = _epoch(feed), _epoch(feed)
    for embeddings, onehot in (first, second):
        assert len(embeddings) == feed.frames == len(expected)
        np.testing.assert_array_equal(_sorted_rows(embeddings, onehot.argmax(axis=1)), expected)
    assert not np.array_equal(first[0], second[0])  # reshuffled
    assert feed.peak_bytes <= config.ram_budget_bytes


def test_streaming_stays_within_a_budget_smaller_than_the_data(corpus) -> None:
    config = make_config({"block_frames": 32, "ram_budget_mb": 0.5})
    everything = np.ones(len(corpus.label), dtype=bool)
    feed = corpus.feed(everything, config, config.ram_budget_bytes, shuffle=True)
    assert not feed.resident and feed.frames * 4096 > 4 * config.ram_budget_bytes
    _epoch(feed)
    assert 0 < feed.peak_bytes <= config.ram_budget_bytes
    with pytest.raises(ConfigError, match="cannot stream blocks of"):
        corpus.feed(everything, make_config({"ram_budget_mb": 0.5}), 2**19, shuffle=True)


def test_unshuffled_feed_is_in_block_order(corpus) -> None:
    config = make_config({"block_frames": 40, "ram_budget_mb": 0.4})
    chosen = corpus.speaker == corpus.speaker[0]
    feed = corpus.feed(chosen, config, config.ram_budget_bytes, shuffle=False)
    embeddings, onehot = _epoch(feed)
    expected_embeddings, expected_labels = _expected_frames(corpus, chosen)
    np.testing.assert_array_equal(embeddings, expected_embeddings)
    np.testing.assert_array_equal(onehot.argmax(axis=1), expected_labels)
    speech = read_speech(feed.reader, feed.blocks)
    np.testing.assert_array_equal(speech, expected_labels < len(corpus.accents))


def test_d_prime_reproduces_the_examples_numbers() -> None:
    assert round(d_prime(0.9079), 3) == 1.878
    assert round(d_prime(0.8907), 3) == 1.740
    assert d_prime(1.0) is None


def test_pooling_uses_speech_frames_and_falls_back_to_all() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    groups = np.array([0, 0, 1, 1])
    speech = np.array([True, False, False, False])
    means, fallback = pool(probs, groups, speech, 2)
    np.testing.assert_allclose(means, [[0.9, 0.1], [0.45, 0.55]])
    assert fallback.tolist() == [False, True]


def test_majority_baseline_answers_the_commonest_training_accent() -> None:
    scores = majority_baseline(np.array([1, 1, 0]), np.array([0, 1, 1, 1]), ["A", "B"])
    assert (scores["answer"], scores["accuracy"], scores["balanced_accuracy"]) == ("B", 0.75, 0.5)
