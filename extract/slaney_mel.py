"""The Slaney mel scale and its triangular filter bank, as pure numpy functions: librosa's
defaults (`hz_to_mel(htk=False)`, `filters.mel(norm="slaney")`), the mel of GE2E's and of
Whisper's front ends.
"""

from __future__ import annotations

import functools

import numpy as np

# The Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above, 27 mels
# per factor 6.4 (librosa's `hz_to_mel(htk=False)`, from Slaney's Auditory Toolbox).
_LINEAR_HZ_PER_MEL = 200.0 / 3
_LOG_START_HZ = 1000.0
_LOG_START_MEL = _LOG_START_HZ / _LINEAR_HZ_PER_MEL
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, np.float64)
    above = _LOG_START_MEL + np.log(np.maximum(hz, _LOG_START_HZ) / _LOG_START_HZ) / _LOG_STEP
    return np.where(hz >= _LOG_START_HZ, above, hz / _LINEAR_HZ_PER_MEL)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    above = _LOG_START_HZ * np.exp(_LOG_STEP * (np.maximum(mel, _LOG_START_MEL) - _LOG_START_MEL))
    return np.where(mel >= _LOG_START_MEL, above, mel * _LINEAR_HZ_PER_MEL)


@functools.lru_cache(maxsize=8)
def mel_filterbank(fft_size: int, sample_rate: int, bands: int) -> np.ndarray:
    """[FFT bins, bands] triangles from 0 Hz to Nyquist, evenly spaced in mels, each scaled to
    unit area over frequency (Slaney's normalisation: 2 / its width in Hz)."""
    bins = np.fft.rfftfreq(fft_size, 1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(sample_rate / 2), bands + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    triangles = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    return triangles.T
