"""YAMNet's front end as plain numpy functions: the readable reference the tests check
`frontend.py` (the one front end, in keras.ops) and `tf.signal` against. Nothing in brogue
runs it.

Each step mirrors one op of the Hub graph (official `features.py`): zero-pad the
waveform to whole patches, a magnitude STFT with a periodic Hann window, the mel
matrix (built here in float64), `log(mel + offset)`, then overlapping patches. In
float64 it agrees with the Hub to 3e-5 on speech and noise; on pure tones the Hub's
empty bands hold its own float32 FFT's rounding noise, which no numpy FFT reproduces.
"""

from __future__ import annotations

import numpy as np

from brogue.extract.yamnet.params import Params


def pad_waveform(waveform: np.ndarray, params: Params) -> np.ndarray:
    """Zero-pad at the end so the waveform fills a whole number of patches."""
    padded_length = params.min_samples + (params.grid.frame_count(len(waveform)) - 1) * (
        params.patch_hop_samples
    )
    return np.pad(waveform, (0, padded_length - len(waveform)))


def periodic_hann(length: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


def stft_magnitude(waveform: np.ndarray, params: Params) -> np.ndarray:
    """|STFT| [frames, fft_length // 2 + 1], frames without centring or end padding."""
    window = params.stft_window_samples
    frames = np.lib.stride_tricks.sliding_window_view(waveform, window)[:: params.stft_hop_samples]
    return np.abs(np.fft.rfft(frames * periodic_hann(window), n=params.fft_length))


def _hertz_to_mel(hertz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(hertz, dtype=np.float64) / 700.0)


def mel_matrix(params: Params) -> np.ndarray:
    """Triangular mel filters [fft_length // 2 + 1, mel_bands] on the HTK mel scale, in
    float64; the DC row is zero."""
    num_bins = params.fft_length // 2 + 1
    bin_mels = _hertz_to_mel(np.linspace(0.0, params.sample_rate / 2.0, num_bins)[1:])[:, None]
    edges = np.linspace(
        _hertz_to_mel(params.mel_min_hz), _hertz_to_mel(params.mel_max_hz), params.mel_bands + 2
    )
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mels - lower) / (centre - lower)
    falling = (upper - bin_mels) / (upper - centre)
    return np.pad(np.maximum(0.0, np.minimum(rising, falling)), ((1, 0), (0, 0)))


def log_mel_spectrogram(padded_waveform: np.ndarray, params: Params) -> np.ndarray:
    """log(mel + offset) [frames, mel_bands] of an already padded waveform."""
    mel = stft_magnitude(padded_waveform.astype(np.float64), params) @ mel_matrix(params)
    return np.log(mel + params.log_offset).astype(np.float32)


def patches(log_mel: np.ndarray, params: Params) -> np.ndarray:
    """Overlapping patches [N, patch_frames, mel_bands]; a trailing partial patch is dropped."""
    windows = np.lib.stride_tricks.sliding_window_view(log_mel, params.patch_frames, axis=0)
    return np.ascontiguousarray(windows[:: params.patch_hop_frames].transpose(0, 2, 1))


def waveform_to_patches(waveform: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """(log_mel [M, 64], patches [N, 96, 64]) exactly as the Hub model computes them."""
    log_mel = log_mel_spectrogram(pad_waveform(waveform, params), params)
    return log_mel, patches(log_mel, params)
