"""The keras-free facts of YAMNet's front end: the sizes of its calls, the host layout of many
clips and the log-mel rows behind their patches. Its frame count and padded length are its
grid's (`Params.grid`, `extract/grid.py`), which the tests hold to `frontend.patch_count`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brogue.extract.grid import SAMPLE_RATE

from .params import Params

# Clips per call of the native engine's front end: 16 clips of ~6 s ran it 2.4x faster than one
# call per clip: a call costs ~1.2 ms by itself, and bigger ones keep both cores busier. The
# decode workers keep two calls' clips coming (`decode.TASKS_PER_WORKER`).
CLIPS_PER_FRONT_END_CALL = 16
# ... and at most this much audio per call, which bounds the call's intermediates (frames,
# spectra). Extracting a 1 h recording (16 s blocks) peaked at 1,318 MB for all processes with
# 16 blocks per call, 1,135 MB at 96 s, 1,091 MB at 48 s; TensorFlow's import alone is 832 MB
# of it. Smaller calls cost speed: the front end ran at 3,400-4,200 audio-s/s in 96 s calls
# against 2,700-3,100 in 48 s ones.
SAMPLES_PER_FRONT_END_CALL = 96 * SAMPLE_RATE


def log_mel_rows(patches, params: Params):
    """Rows of log-mel (STFT frames) behind `patches` patches: whole patches, no remainder."""
    return params.patch_frames + (patches - 1) * params.patch_hop_frames


def lay_out(waveforms: Sequence[np.ndarray], params: Params
            ) -> tuple[np.ndarray, np.ndarray]:
    """(samples, lengths): the input for many clips of the front end, built on the host.

    The clips end to end, each followed by the zeros that pad it to whole patches. Copying
    them into a zeroed buffer ran 20x faster than padding inside the graph, where every
    sample needs its own index (the whole front end went from 1,800 to 3,300-4,700 audio-s/s).
    """
    lengths = np.array([len(waveform) for waveform in waveforms], np.int32)
    padded = params.grid.padded_samples(params.grid.frame_counts(lengths))
    starts = np.cumsum(padded) - padded
    samples = np.zeros(padded.sum(), np.float32)
    for waveform, start in zip(waveforms, starts, strict=True):
        samples[start : start + len(waveform)] = waveform
    return samples, lengths
