"""Whisper's front end as pure numpy functions: waveform -> log-mel [bands, frames].

OpenAI's recipe, which transformers' `WhisperFeatureExtractor` follows (the tests hold these
functions to it): a 400-sample periodic Hann window every 160 samples over the waveform
reflect-padded by 200 at each end (frames centred on every 10 ms), power spectrum, Slaney mel
triangles from 0 Hz to Nyquist (80 bands; 128 for large-v3, read from the weights), the last
frame dropped, log10 of power floored at 1e-10, then floored at 8 below the loudest value of the
input, then (x + 4) / 4.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from brogue.extract.grid import SAMPLE_RATE
from brogue.extract.slaney_mel import mel_filterbank


@dataclasses.dataclass(frozen=True)
class FrontEnd:
    mel_bands: int = 80
    sample_rate: int = SAMPLE_RATE
    mel_window_samples: int = 400  # 25 ms; also the FFT length (201 bins)
    mel_hop_samples: int = 160  # 10 ms
    power_floor: float = 1e-10
    dynamic_range: float = 8.0  # log10 units kept below the input's loudest value

    @property
    def samples_per_state(self) -> int:
        """Samples between the encoder's states: its second convolution has stride 2 (20 ms)."""
        return 2 * self.mel_hop_samples


def log_mel(waveform: np.ndarray, front_end: FrontEnd) -> np.ndarray:
    """[bands, len(waveform) // hop] float32: Whisper's log-mel of the whole of `waveform`."""
    half = front_end.mel_window_samples // 2
    padded = np.pad(np.asarray(waveform, np.float32), half, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(
        padded, front_end.mel_window_samples)[::front_end.mel_hop_samples][:-1]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(front_end.mel_window_samples)
                              / front_end.mel_window_samples)
    spectrum = np.fft.rfft(frames * hann, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = mel_filterbank(front_end.mel_window_samples, front_end.sample_rate,
                         front_end.mel_bands).T @ power.T
    logs = np.log10(np.maximum(mel, front_end.power_floor))
    logs = np.maximum(logs, logs.max() - front_end.dynamic_range)
    return ((logs + 4.0) / 4.0).astype(np.float32)
