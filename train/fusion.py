"""Fusion: one corpus from several caches of the same clips, each cache a stream of frames.

The first cache defines the clips; each other cache is matched to it by clip identity (the
path as extracted and the content hash), and a clip missing from any cache is left out, with
one line counting them. Matched clips must carry the same accent and speaker in every cache.
Only clip-level families fuse (`train.families`): each pools every stream on its own grid
and joins the pooled vectors; a frame-level family would need one grid for all encoders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from brogue.train.dataset import Corpus, CorpusError, load_corpus


def load_fused(caches: Path | Sequence[Path]) -> Corpus:
    """The corpus of the clips every cache holds, streamed from each (one cache: as it is)."""
    caches = [caches] if isinstance(caches, Path) else list(caches)
    corpus = load_corpus(caches[0])
    others = [load_corpus(directory) for directory in caches[1:]]
    if not others:
        return corpus
    identity = np.char.add(np.char.add(corpus.path, "\0"), corpus.key)
    rows = []  # for each other cache, its row of each of the first cache's clips, or -1
    for other in others:
        index = dict(zip(np.char.add(np.char.add(other.path, "\0"), other.key).tolist(),
                         range(len(other.key)), strict=True))  # fmt: skip
        rows.append(np.array([index.get(clip, -1) for clip in identity.tolist()], np.int64))
    kept = np.flatnonzero(np.all([row >= 0 for row in rows], axis=0))
    if not kept.size:
        raise CorpusError(f"{caches[0]}: no clip of it is in every other cache; fuse caches of "
                          "one corpus")  # fmt: skip
    if len(kept) < len(identity):
        print(f"fusion: {len(identity) - len(kept)} of the {len(identity)} clips of "
              f"{caches[0]} are missing from another cache and left out")  # fmt: skip
    fused = corpus.select(kept)
    streams = []
    for directory, other, row in zip(caches[1:], others, rows, strict=True):
        matched = other.select(row[kept])
        accents = np.array(other.accents)[matched.label]
        if not np.array_equal(accents, np.array(fused.accents)[fused.label]) or \
                not np.array_equal(matched.speaker, fused.speaker):  # fmt: skip
            raise CorpusError(f"{directory}: its clips carry other accents or speakers than the "
                              f"same clips in {caches[0]}; fuse caches of one corpus")  # fmt: skip
        streams.append(matched.streams[0])
    return replace(fused, fused=tuple(streams))
