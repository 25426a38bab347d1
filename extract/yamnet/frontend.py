"""YAMNet's log-mel front end as a Keras layer, for models that take a raw waveform.

`features.py` computes the same patches in numpy for the engines. This layer repeats its steps
with keras.ops, so a model can go from waveform to patches on any backend and be exported
whole: the same zero padding, frames of `stft_window_samples` every `stft_hop_samples` (no
centring), the same periodic Hann window and mel matrix (taken from `features`), an rfft of
`fft_length`, `log(mel + log_offset)` and overlapping patches. It computes in float32, as the
Hub graph does, where `features.py` uses float64.
"""

from __future__ import annotations

import keras
from keras import ops

from .features import mel_matrix, periodic_hann
from .params import PARAMS, Params


def _at_least_zero(count):
    """max(count, 0) for a Python int or a symbolic length (a tensor has no Python max)."""
    return (abs(count) + count) // 2


def _windows(values, count, length: int, hop: int):
    """Rows values[k·hop : k·hop + length] for k < count, stacked along a new first axis."""
    starts = ops.expand_dims(ops.arange(count) * hop, 1)
    return ops.take(values, starts + ops.expand_dims(ops.arange(length), 0), axis=0)


class LogMelPatches(keras.layers.Layer):
    """A 16 kHz waveform [samples] -> log-mel patches [N, patch_frames, mel_bands].

    N is 1 + ceil(max(0, samples - min_samples) / patch_hop_samples), as `features.num_patches`.
    """

    def __init__(self, params: Params = PARAMS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.params = params
        self.window = ops.convert_to_tensor(periodic_hann(params.stft_window_samples), "float32")
        self.mel = ops.convert_to_tensor(mel_matrix(params), "float32")

    def call(self, waveform):
        params = self.params
        samples = ops.shape(waveform)[0]
        after_first = _at_least_zero(samples - params.min_samples)
        patches = 1 + (after_first + params.patch_hop_samples - 1) // params.patch_hop_samples
        padded_length = params.min_samples + (patches - 1) * params.patch_hop_samples
        padded = ops.pad(waveform, [[0, padded_length - samples]])
        stft_frames = params.patch_frames + (patches - 1) * params.patch_hop_frames
        frames = _windows(padded, stft_frames, params.stft_window_samples, params.stft_hop_samples)
        real, imag = ops.rfft(frames * self.window, fft_length=params.fft_length)
        magnitude = ops.sqrt(real * real + imag * imag)
        log_mel = ops.log(ops.matmul(magnitude, self.mel) + params.log_offset)
        return _windows(log_mel, patches, params.patch_frames, params.patch_hop_frames)

    def compute_output_shape(self, input_shape):
        return (None, *self.params.patch_shape)
