"""YAMNet's front end in numpy and scipy's float32 FFT, for extraction without TensorFlow.

The same function as `frontend.LogMelPatches` on `lay_out`'s (samples, lengths): each clip's
frames (periodic Hann window, no centring), magnitude STFT, log(mel + offset), and the patches
cut from its own rows. With the graph's own window and mel matrix, and scipy's float32 FFT
(bit for bit TensorFlow's), its embeddings are as close to the Hub's as the Keras front end's
(2.2e-5 on the parity clips, pure tones included), without importing TensorFlow.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import scipy.fft

from .features import log_mel_rows
from .params import PARAMS, Params

# The Hub graph's periodic Hann window and mel matrix, bit for bit: computed once by `frontend`
# (TensorFlow's float32 cos and log; numpy's round 22 window values and 29 mel edges
# differently, which a pure tone's near-empty bands magnified to 3.6e-4 in embeddings) and
# shipped. `python -m dev.front_end_constants` writes them; the tests hold them to
# `frontend`'s.
CONSTANTS = Path(__file__).with_name("front_end_constants.npz")


def constants(params: Params = PARAMS) -> tuple[np.ndarray, np.ndarray]:
    """(window [400], mel matrix [257, 64]) for `params`, which must be the ones shipped."""
    with np.load(CONSTANTS) as saved:
        if str(saved["params"]) != params.to_json():
            raise ValueError(f"{CONSTANTS.name} holds the front end for {saved['params']}, "
                             f"not {params.to_json()}")
        return saved["window"], saved["mel"]


def _ragged_starts(counts: np.ndarray, firsts: np.ndarray, step: int) -> np.ndarray:
    """firsts[c] + step·k for k < counts[c], for every clip c, concatenated."""
    owner = np.repeat(np.arange(len(counts)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return firsts[owner] + offsets * step


def frame(values: np.ndarray, starts: np.ndarray, length: int, unit: int) -> np.ndarray:
    """Rows values[s·unit : s·unit + length] for each s in `starts`, on a new first axis,
    gathered a unit of rows at a time (as `frontend.frame`): 5x faster than row by row."""
    units = values.reshape(-1, unit, *values.shape[1:])
    selected = units[starts[:, None] + np.arange(length // unit)]
    return selected.reshape(-1, length, *values.shape[1:])


class HostLogMelPatches:
    """(log_mel [M, 64], patches [N, 96, 64]) of `lay_out`'s (samples, lengths)."""

    def __init__(self, params: Params = PARAMS):
        self.params = params
        self.window, self.mel = constants(params)

    def __call__(self, samples: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        params = self.params
        patches = params.grid.frame_counts(lengths)
        padded = params.grid.padded_samples(patches)
        rows = log_mel_rows(patches, params)
        # A padded clip is whole units of gcd(window, hop) samples, and its log-mel whole
        # units of gcd(patch, patch hop) rows, so no frame straddles two clips.
        unit = math.gcd(params.stft_window_samples, params.stft_hop_samples)
        starts = _ragged_starts(rows, (np.cumsum(padded) - padded) // unit,
                                params.stft_hop_samples // unit)
        # The FFT's zero padding laid out here, and the window applied as the frames are
        # gathered: scipy would copy every frame to pad it.
        frames = np.empty((len(starts), params.fft_length), np.float32)
        frames[:, params.stft_window_samples :] = 0
        np.multiply(frame(samples, starts, params.stft_window_samples, unit), self.window,
                    out=frames[:, : params.stft_window_samples])
        # pocketfft's float32 transform: bit for bit TensorFlow's (numpy's and ducc0's are not)
        spectrum = scipy.fft.rfft(frames, axis=1).view(np.float32)
        np.square(spectrum, out=spectrum)
        magnitude = spectrum[:, 0::2] + spectrum[:, 1::2]  # re² + im², as the graph: no hypot
        np.sqrt(magnitude, out=magnitude)
        log_mel = np.log(magnitude @ self.mel + np.float32(params.log_offset))
        unit = math.gcd(params.patch_frames, params.patch_hop_frames)
        patch_starts = _ragged_starts(patches, (np.cumsum(rows) - rows) // unit,
                                      params.patch_hop_frames // unit)
        return log_mel, frame(log_mel, patch_starts, params.patch_frames, unit)
