"""Which clips train and which validate: speaker hold-out, speaker folds, or the example's split.

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
from brogue.extract.corpus import parse_openslr83_index
from brogue.train.config import TrainConfig
from brogue.train.corpus import Corpus


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


def speaker_holdout(speaker_labels: Mapping[str, str], valid_ratio: float, seed: int) -> list[str]:
    """The validation speakers: about `valid_ratio` of each accent's speakers, at least one.

    Stratifying by accent keeps every accent with two or more speakers on both sides, which a
    plain group split would not: the real corpus has only 3 Irish and 5 Midlands speakers.
    """
    rng = np.random.default_rng(seed)
    valid: list[str] = []
    for label, speakers in _speakers_by_label(speaker_labels).items():
        if len(speakers) < 2:
            warnings.warn(
                f"accent {label!r} has a single speaker, so it is only trained on, never validated",
                SplitWarning,
                stacklevel=2,
            )
            continue
        count = min(max(1, int(len(speakers) * valid_ratio + 0.5)), len(speakers) - 1)
        valid.extend(speakers[i] for i in rng.permutation(len(speakers))[:count])
    return sorted(valid)


def speaker_folds(speaker_labels: Mapping[str, str], folds: int, seed: int) -> list[list[str]]:
    """The validation speakers of each of `folds` folds; every speaker validates exactly once.

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
                f"{folds} folds validate without it",
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
    """One train/validation assignment of a corpus's clips, and how it was drawn."""

    kind: str  # "speaker" or "random"
    seed: int
    valid_ratio: float
    fold: int | None  # 1-based, with folds > 1
    folds: int
    index: str | None  # the file giving the example's row order, for kind "random"
    valid: np.ndarray  # bool per clip
    train: np.ndarray  # bool per clip; a clip may be on neither side, never on both

    def describe(self) -> dict[str, Any]:
        """How the split was drawn."""
        names = ("kind", "seed", "valid_ratio", "fold", "folds", "index")
        return {name: getattr(self, name) for name in names}

    def to_json(self, corpus: Corpus) -> dict[str, Any]:
        """The split with each side's speakers and clips (content hashes), as saved in a run."""
        return {
            **self.describe(),
            **{
                f"{side}_{what}": sorted(set(values[mask].tolist()))
                for side, mask in (("train", self.train), ("valid", self.valid))
                for what, values in (("speakers", corpus.speaker), ("clips", corpus.key))
            },
        }


def split_from_json(corpus: Corpus, saved: Mapping[str, Any]) -> Split:
    """The saved split applied to `corpus`; clips the saved run never saw are on neither side."""
    return Split(
        kind=saved["kind"],
        seed=saved["seed"],
        valid_ratio=saved["valid_ratio"],
        fold=saved["fold"],
        folds=saved["folds"],
        index=saved["index"],
        valid=np.isin(corpus.key, saved["valid_clips"]),
        train=np.isin(corpus.key, saved["train_clips"]),
    )


def make_splits(corpus: Corpus, config: TrainConfig, index: Path | None) -> list[Split]:
    """The split (or the `config.folds` folds) that the config asks for."""
    if index is not None and config.split != "random":
        raise SplitError("an index file gives the example's row order, for split=random only")
    common = {"seed": config.seed, "valid_ratio": config.valid_ratio, "folds": config.folds}
    if config.split == "random":
        rows, names = _example_rows(corpus, index)
        valid = np.isin(names, example_holdout(rows, config.valid_ratio, config.seed))
        return [
            Split(
                kind="random",
                fold=None,
                index=str(index) if index else None,
                valid=valid,
                train=~valid,
                **common,
            )
        ]
    if config.folds == 1:
        held_out = [speaker_holdout(corpus.speaker_labels(), config.valid_ratio, config.seed)]
    else:
        held_out = speaker_folds(corpus.speaker_labels(), config.folds, config.seed)
    splits = []
    for number, speakers in enumerate(held_out, start=1):
        valid = np.isin(corpus.speaker, speakers)
        splits.append(
            Split(
                kind="speaker",
                fold=number if config.folds > 1 else None,
                index=None,
                valid=valid,
                train=~valid,
                **common,
            )
        )
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
