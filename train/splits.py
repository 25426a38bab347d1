"""Who trains, who validates, who tests: speaker hold-outs, nested speaker folds, or the example's.

The default split has three sides, stratified by accent and grouped by speaker: train fits the
model, valid drives early stopping, checkpoints and sweep selection, and test is scored once, on
the final model, and never selects anything. With folds, each fold's test speakers are one
speaker fold, and its valid speakers are drawn from the other folds' speakers only.

All functions are pure and seeded. Speaker splits work on the speaker → accent table alone, so a
split never looks at audio or embeddings, and the same seed gives the same split on any machine.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brogue.errors import BrogueError
from brogue.openslr83 import parse_openslr83_index
from brogue.train.config import TrainConfig
from brogue.train.dataset import Corpus


class SplitWarning(UserWarning):
    """A split is legal but weaker than asked, e.g. an accent with one speaker."""


class SplitError(BrogueError):
    """No split of the asked kind exists for this corpus; the message is one line."""


def _speakers_by_label(speaker_labels: Mapping[str, str]) -> dict[str, list[str]]:
    """Accent → its speakers, both sorted, so the seed alone fixes the shuffles that follow."""
    by_label: dict[str, list[str]] = {}
    for speaker in sorted(speaker_labels):
        by_label.setdefault(speaker_labels[speaker], []).append(speaker)
    return dict(sorted(by_label.items()))


def speaker_holdout(
    speaker_labels: Mapping[str, str], ratio: float, seed: int, side: str = "validated"
) -> list[str]:
    """Held-out speakers: about `ratio` of each accent's speakers, at least one, never all.

    Stratifying by accent keeps every accent with two or more speakers on both sides, which a
    plain group split would not: the real corpus has only 3 Irish and 5 Midlands speakers.
    `side` names what the held-out speakers are for, in the warning about a lone speaker.
    """
    rng = np.random.default_rng(seed)
    held_out: list[str] = []
    for label, speakers in _speakers_by_label(speaker_labels).items():
        if len(speakers) < 2:
            warnings.warn(
                f"accent {label!r} has a single speaker left, so it is trained on, never {side}",
                SplitWarning,
                stacklevel=2,
            )
            continue
        count = min(max(1, int(len(speakers) * ratio + 0.5)), len(speakers) - 1)
        held_out.extend(speakers[i] for i in rng.permutation(len(speakers))[:count])
    return sorted(held_out)


def three_way(
    speaker_labels: Mapping[str, str], valid_ratio: float, test_ratio: float, seed: int
) -> tuple[list[str], list[str]]:
    """The (valid, test) speakers: test first, then valid from the speakers test left.

    Each is about its ratio of every accent's speakers, and at least one while an accent has
    speakers to spare. An accent needs three speakers to sit on all three sides: OpenSLR 83's 3
    Irish speakers give exactly one each.
    """
    test = speaker_holdout(speaker_labels, test_ratio, seed, side="tested")
    rest = {speaker: label for speaker, label in speaker_labels.items() if speaker not in test}
    valid = speaker_holdout(rest, min(valid_ratio / (1 - test_ratio), 0.5), seed + 1)
    return valid, test


def speaker_folds(speaker_labels: Mapping[str, str], folds: int, seed: int) -> list[list[str]]:
    """The held-out speakers of each of `folds` folds; every speaker is held out exactly once.

    Each accent's shuffled speakers are dealt round the folds, continuing from where the last
    accent stopped, so folds get near-equal numbers of speakers and of each accent.
    """
    if folds > len(speaker_labels):
        raise SplitError(
            f"{folds} folds need at least {folds} speakers, the cache has {len(speaker_labels)}"
        )
    rng = np.random.default_rng(seed)
    dealt: list[list[str]] = [[] for _ in range(folds)]
    position = 0
    for label, speakers in _speakers_by_label(speaker_labels).items():
        if len(speakers) < folds:
            warnings.warn(
                f"accent {label!r} has {len(speakers)} speaker(s), so {folds - len(speakers)} of "
                f"{folds} folds test without it",
                SplitWarning,
                stacklevel=2,
            )
        for i in rng.permutation(len(speakers)):
            dealt[position % folds].append(speakers[i])
            position += 1
    return [sorted(fold) for fold in dealt]


def example_holdout(rows: Sequence[str], valid_ratio: float, seed: int) -> list[str]:
    """The rows the Keras example validates on, given its rows in their original order.

    The example shuffles with pandas `DataFrame.sample(frac=1, random_state=seed)`, which draws
    `np.random.RandomState(seed).choice(n, n, replace=False)`, that is the same RandomState's
    `permutation(n)`; then it trains on the first `int(n * (1 - valid_ratio))` rows.
    """
    order = np.random.RandomState(seed).permutation(len(rows))
    first_valid = int(len(rows) * (1 - valid_ratio))
    return [rows[i] for i in order[first_valid:]]


@dataclass(frozen=True)
class Split:
    """One train/valid/test assignment of a corpus's clips, and how it was drawn."""

    kind: str  # "speaker" or "random"
    seed: int
    valid_ratio: float
    test_ratio: float | None  # None with folds (a fold is the test side) and for kind "random"
    fold: int | None  # 1-based, with folds > 1
    folds: int
    index: str | None  # the file giving the example's row order, for kind "random"
    valid: np.ndarray  # bool per clip
    train: np.ndarray  # bool per clip; a clip is on one side at most
    test: np.ndarray  # bool per clip; empty for kind "random", the example's two-way split

    def describe(self) -> dict[str, Any]:
        """How the split was drawn."""
        names = ("kind", "seed", "valid_ratio", "test_ratio", "fold", "folds", "index")
        return {name: getattr(self, name) for name in names}

    def sides(self) -> list[tuple[str, np.ndarray]]:
        """(name, mask) of the sides that hold clips, in the order train, valid, test."""
        masks = (("train", self.train), ("valid", self.valid), ("test", self.test))
        return [(side, mask) for side, mask in masks if mask.any()]

    def to_json(self, corpus: Corpus) -> dict[str, Any]:
        """The split with each side's speakers and clips (content hashes), as saved in a run."""
        return {
            **self.describe(),
            **{
                f"{side}_{what}": sorted(set(values[mask].tolist()))
                for side, mask in (("train", self.train), ("valid", self.valid),
                                   ("test", self.test))
                for what, values in (("speakers", corpus.speaker), ("clips", corpus.key))
            },  # fmt: skip
        }


def split_from_json(corpus: Corpus, saved: Mapping[str, Any]) -> Split:
    """The saved split applied to `corpus`; clips the saved run never saw are on neither side."""
    return Split(
        kind=saved["kind"],
        seed=saved["seed"],
        valid_ratio=saved["valid_ratio"],
        test_ratio=saved["test_ratio"],
        fold=saved["fold"],
        folds=saved["folds"],
        index=saved["index"],
        valid=np.isin(corpus.key, saved["valid_clips"]),
        train=np.isin(corpus.key, saved["train_clips"]),
        test=np.isin(corpus.key, saved["test_clips"]),
    )


def make_splits(corpus: Corpus, config: TrainConfig, index: Path | None) -> list[Split]:
    """The split (or the `config.folds` nested folds) that the config asks for."""
    if index is not None and config.split != "random":
        raise SplitError("an index file gives the example's row order, for split=random only")
    common = {"seed": config.seed, "valid_ratio": config.valid_ratio, "folds": config.folds}
    if config.split == "random":
        rows, names = _example_rows(corpus, index)
        valid = np.isin(names, example_holdout(rows, config.valid_ratio, config.seed))
        nowhere = np.zeros_like(valid)
        named = str(index) if index else None
        return [Split(kind="random", test_ratio=None, fold=None, index=named, valid=valid,
                      train=~valid, test=nowhere, **common)]  # fmt: skip
    labels = corpus.speaker_labels()
    if config.folds == 1:
        valid, test = three_way(labels, config.valid_ratio, config.test_ratio, config.seed)
        sides = [(None, valid, test)]
    else:
        # The valid share of the other folds' speakers that makes it valid_ratio of them all.
        ratio = min(config.valid_ratio * config.folds / (config.folds - 1), 0.5)
        sides = []
        for number, test in enumerate(speaker_folds(labels, config.folds, config.seed), 1):
            rest = {speaker: label for speaker, label in labels.items() if speaker not in test}
            sides.append((number, speaker_holdout(rest, ratio, config.seed + number), test))
    splits = []
    for number, valid_speakers, test_speakers in sides:
        valid = np.isin(corpus.speaker, valid_speakers)
        test = np.isin(corpus.speaker, test_speakers)
        test_ratio = config.test_ratio if number is None else None
        splits.append(Split(kind="speaker", test_ratio=test_ratio, fold=number, index=None,
                            valid=valid, train=~(valid | test), test=test, **common))  # fmt: skip
    return splits


def _example_rows(corpus: Corpus, index: Path | None) -> tuple[list[str], np.ndarray]:
    """The rows the example shuffles, in its order, and the row name of each clip.

    The example's rows are the lines of OpenSLR 83's `line_index_all.csv`; given that file, the
    split is the example's own, file for file. Without it the rows are the cache's clips in
    cache order: the same proportions and seed, but other files.
    """
    if index is None:
        return corpus.key.tolist(), corpus.key
    rows = [row["file_id"] for row in parse_openslr83_index(index)]
    missing = np.setdiff1d(corpus.stem, rows)
    if missing.size:
        raise SplitError(f"{index} lacks {missing.size} of the cache's clips, e.g. {missing[0]}")
    return rows, corpus.stem
