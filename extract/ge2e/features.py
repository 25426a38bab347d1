"""GE2E's front end as pure numpy functions: waveform -> windows of 40-band mel power.

Resemblyzer computes its mel with librosa (`melspectrogram` defaults: periodic Hann window,
power 2, Slaney mel scale with area normalisation, no log); these functions compute the same
numbers without librosa, and the tests hold them to librosa's where it is installed.
"""

from __future__ import annotations

import numpy as np

from ..slaney_mel import mel_filterbank
from .params import Params


def mel_power(waveform: np.ndarray, params: Params) -> np.ndarray:
    """[T, bands] float32: the mel power of each 25 ms frame starting every 10 ms, with no
    padding (frame t reads samples [t * hop, t * hop + window)); T = 1 + (S - window) // hop."""
    frames = np.lib.stride_tricks.sliding_window_view(
        np.asarray(waveform, np.float32), params.mel_window_samples)[::params.mel_hop_samples]
    # librosa's `get_window("hann", fftbins=True)`: the periodic Hann window.
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(params.mel_window_samples)
                              / params.mel_window_samples)
    spectrum = np.fft.rfft(frames * hann, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    return (power @ mel_filterbank(params.mel_window_samples, params.sample_rate,
                                    params.mel_bands)).astype(np.float32)


def window_gains(padded: np.ndarray, count: int, params: Params) -> np.ndarray:
    """[count] the gain that raises each window's RMS to `target_dbfs`, or 1 where it is louder
    already (Resemblyzer's `normalize_volume(increase_only=True)`, per window). A silent window
    stays silent."""
    energy = np.concatenate([[0.0], np.cumsum(np.square(padded, dtype=np.float64))])
    starts = np.arange(count) * params.hop_samples
    rms = np.sqrt((energy[starts + params.window_samples] - energy[starts])
                  / params.window_samples)
    target = 10.0 ** (params.target_dbfs / 20)
    return np.where(rms > 0, np.maximum(1.0, target / np.maximum(rms, 1e-30)), 1.0)


def windows(waveform: np.ndarray, params: Params) -> np.ndarray:
    """[N, 160, 40] float32: the network's input for each frame of `waveform` on the grid,
    each window's mel power scaled by its gain squared (mel power is quadratic in the gain)."""
    grid = params.grid
    count = grid.frame_count(len(waveform))
    padded = np.zeros(grid.padded_samples(count), np.float32)
    padded[: len(waveform)] = waveform
    mel = mel_power(padded, params)
    stacked = np.lib.stride_tricks.sliding_window_view(mel, params.window_frames, axis=0)
    stacked = stacked[:: params.hop_frames].transpose(0, 2, 1)  # [N, 160, bands]
    gains = window_gains(padded, count, params)
    return (stacked * np.square(gains)[:, None, None]).astype(np.float32)
