"""The keras-free facts of YAMNet's front end: its frame count, padded length and call sizes.

`num_patches` is `frontend.patch_count` for plain ints and arrays, for code that must not import
Keras or wait for it (decode workers planning a long recording's blocks, the engine laying clips
out on the host); the tests hold the two to each other. `padded_samples` is the length a clip is
padded to, used on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .params import Params

# Clips per call of the native engine's front end: 16 clips of ~6 s ran it 2.4x faster than one
# call per clip: a call costs ~1.2 ms by itself, and bigger ones keep both cores busier. Here,
# not in the engine, because the decode workers keep two calls' clips coming.
CLIPS_PER_FRONT_END_CALL = 16
# ... and at most this much audio per call, which bounds the call's intermediates (frames,
# spectra). Extracting a 1 h recording (16 s blocks) peaked at 1,318 MB for all processes with
# 16 blocks per call, 1,135 MB at 96 s, 1,091 MB at 48 s; TensorFlow's import alone is 832 MB
# of it. Smaller calls cost speed: the front end ran at 3,400-4,200 audio-s/s in 96 s calls
# against 2,700-3,100 in 48 s ones.
SAMPLES_PER_FRONT_END_CALL = 96 * 16000


def num_patches(num_samples: int, params: Params) -> int:
    """Frames YAMNet returns for a waveform of `num_samples` (at least one), as
    `frontend.patch_count` computes them: float32, as the Hub graph does."""
    return int(patch_counts(np.array([num_samples]), params)[0])


def patch_counts(lengths: np.ndarray, params: Params) -> np.ndarray:
    """`num_patches` of each length in `lengths`, at once."""
    after_first = np.maximum(lengths.astype(np.int64) - params.min_samples, 0).astype(np.float32)
    reciprocal = np.float32(1) / np.float32(params.patch_hop_samples)
    return 1 + np.ceil(after_first * reciprocal).astype(np.int64)


def padded_samples(patches, params: Params):
    """Samples of a waveform zero-padded to hold `patches` whole patches: plain arithmetic, for
    ints, arrays and tensors alike."""
    return params.min_samples + (patches - 1) * params.patch_hop_samples


def log_mel_rows(patches, params: Params):
    """Rows of log-mel (STFT frames) behind `patches` patches: whole patches, no remainder."""
    return params.patch_frames + (patches - 1) * params.patch_hop_frames


def lay_out(waveforms: Sequence[np.ndarray], params: Params
            ) -> tuple[np.ndarray, np.ndarray]:
    """(samples, lengths): the input for many clips of `LogMelPatches`, built on the host.

    The clips end to end, each followed by the zeros that pad it to whole patches. Copying
    them into a zeroed buffer ran 20x faster than padding inside the graph, where every
    sample needs its own index (the whole front end went from 1,800 to 3,300-4,700 audio-s/s).
    """
    lengths = np.array([len(waveform) for waveform in waveforms], np.int32)
    padded = padded_samples(patch_counts(lengths, params), params)
    starts = np.cumsum(padded) - padded
    samples = np.zeros(padded.sum(), np.float32)
    for waveform, start in zip(waveforms, starts, strict=True):
        samples[start : start + len(waveform)] = waveform
    return samples, lengths
