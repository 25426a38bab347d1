"""A shard cache of synthetic embeddings with learnable accents, for tests and the benchmark.

Each accent has its own mean embedding, each speaker a smaller offset of their own, and each
frame noise on top, so an accent can be told from held-out speakers but not perfectly. A share
of each clip's frames is non-speech (the mask says so) and drawn around a separate mean. It is
written through the cache's own writer (shards and manifest), so it is a cache like any other, made
by a synthetic encoder of YAMNet's width and grid that has no scores.

`WEAK_CUE` is the corpus that compares the model families (`make bench-families`): six
accents, 66 speakers, and an accent cue weak against each speaker's own offset, so that
held-out speakers are hard and a model that learns the training speakers is punished.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brogue.cache import CacheWriter, EncoderRecord, ShardSpec

FINGERPRINT = "synthetic"
ENCODER = EncoderRecord("synthetic", FINGERPRINT, FINGERPRINT, {}, "numpy", "fp32", 0.96, 0.48,
                        1024)  # fmt: skip


@dataclass(frozen=True)
class SyntheticCorpus:
    accents: tuple[str, ...] = ("Irish", "Northern", "Southern", "Welsh")
    speakers: tuple[int, ...] = (3, 4, 8, 4)  # per accent; uneven, as in OpenSLR 83
    clips_per_speaker: int = 6
    frames_per_clip: tuple[int, int] = (6, 14)  # inclusive range
    speech_share: float = 0.8
    # Per-dimension spreads: accents 0.08 apart give held-out speakers about 55 % frame and
    # 80 % clip accuracy; speakers' own offsets (0.06) are what a model can overfit to.
    accent_scale: float = 0.08
    speaker_scale: float = 0.06
    noise_scale: float = 1.0
    clips_per_shard: int = 40


def write_synthetic_cache(directory: Path, corpus: SyntheticCorpus, seed: int,
                          encoder: EncoderRecord = ENCODER) -> Path:
    """Write `corpus` as a cache in `directory` (created) and return the directory; `encoder`
    names the producer and sets the width (another one makes a cache to fuse with this)."""
    rng = np.random.default_rng(seed)
    size = encoder.embedding_size
    means = rng.normal(0.0, corpus.accent_scale, (len(corpus.accents) + 1, size))
    clips = []
    for accent, (label, speakers) in enumerate(zip(corpus.accents, corpus.speakers, strict=True)):
        for number in range(speakers):
            # Named as OpenSLR 83 names them: accent, gender, speaker number, recording number;
            # its Irish speakers are all male.
            gender = "m" if label == "Irish" else "fm"[number % 2]
            speaker = f"{label[:2].lower()}{gender}_{number:05d}"
            offset = rng.normal(0.0, corpus.speaker_scale, size)
            clips += [(label, speaker, accent, offset, n) for n in range(corpus.clips_per_speaker)]
    spec = ShardSpec(directory, encoder, None, extra_columns=("gender",))
    shortest, longest = corpus.frames_per_clip
    with CacheWriter(directory, spec) as cache:
        for first in range(0, len(clips), corpus.clips_per_shard):
            with spec.new_shard() as writer:
                for label, speaker, accent, offset, n in clips[first:][:corpus.clips_per_shard]:
                    frames = int(rng.integers(shortest, longest + 1))
                    speech = rng.random(frames) < corpus.speech_share
                    centre = np.where(speech[:, None], means[accent] + offset, means[-1])
                    embeddings = centre + rng.normal(0.0, corpus.noise_scale, (frames, size))
                    meta = {
                        "path": f"{speaker}/{speaker}_{n:011d}.wav",
                        "label": label,
                        "speaker": speaker,
                        "duration": 0.48 * (frames + 1),
                        "content_hash": f"{speaker}-{n:011d}",
                        "extra": {"gender": {"f": "female", "m": "male"}[speaker[2]]},
                    }
                    writer.add_clip(meta, embeddings, speech)
        cache.write_manifest([])
    return directory


# Accents 0.02 apart per dimension against speakers' own 0.08: the example's head stays well
# below 50% clip balanced accuracy on held-out speakers (chance is 1/6), as on real accents.
WEAK_CUE = SyntheticCorpus(
    accents=("Irish", "Midlands", "Northern", "Scottish", "Southern", "Welsh"),
    speakers=(6, 8, 12, 12, 16, 12),
    clips_per_speaker=20,
    accent_scale=0.02,
    speaker_scale=0.08,
    clips_per_shard=256,
)
