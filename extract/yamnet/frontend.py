"""YAMNet's log-mel front end in keras.ops: the STFT the native engine, the extraction
cache, `predict` and the exported model all share.

`features.py` holds the same steps in numpy as the readable reference, and the padding,
mel matrix and patching every path uses. The STFT itself has to be op for op the Hub
graph's: where a clip is nearly empty in some bands (a pure tone, a chirp), the Hub's
values there are its own float32 FFT's rounding noise, of the order of the 0.001 log
offset, and only the same window bits and the same FFT reproduce them. numpy's float64
STFT was 1.4e-3 off in log-mel and 1.5e-3 in embeddings on a 440 Hz tone, numpy's
float32 FFT with TensorFlow's window 1.3e-3; `LogMel`, whose rfft on the TensorFlow
backend is the Hub graph's, 5e-6.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .features import mel_matrix
from .params import PARAMS, Params


def hann_window(length: int):
    """The periodic Hann window exactly as `tf.signal.hann_window` computes it, op for op in
    float32; numpy's float64 window rounds differently in the last bit of some samples."""
    count = ops.arange(length, dtype="float32")
    return 0.5 - 0.5 * ops.cos(ops.convert_to_tensor(2 * np.pi, "float32") * count / length)


class LogMel(keras.layers.Layer):
    """STFT frames [F, 400] -> log(mel + offset) [F, 64], op for op as the Hub graph."""

    def __init__(self, params: Params = PARAMS, **kwargs):
        super().__init__(**kwargs)
        self.params = params
        self.window = hann_window(params.stft_window_samples)
        self.mel = ops.convert_to_tensor(mel_matrix(params), "float32")

    def call(self, frames):
        real, imag = ops.rfft(frames * self.window, fft_length=self.params.fft_length)
        magnitude = ops.sqrt(real * real + imag * imag)
        return ops.log(ops.matmul(magnitude, self.mel) + self.params.log_offset)


def build_log_mel(params: Params) -> keras.Model:
    """A model of `LogMel` alone, so the engine can compile it and feed it big batches."""
    frames = keras.Input(shape=(params.stft_window_samples,), name="stft_frames")
    return keras.Model(frames, LogMel(params, name="log_mel")(frames), name="yamnet_log_mel")


def _windows(values, count, length: int, hop: int):
    """Rows values[k·hop : k·hop + length] for k < count, stacked along a new first axis."""
    starts = ops.expand_dims(ops.arange(count) * hop, 1)
    return ops.take(values, starts + ops.expand_dims(ops.arange(length), 0), axis=0)


class LogMelPatches(keras.layers.Layer):
    """A 16 kHz waveform [samples] -> log-mel patches [N, patch_frames, mel_bands].

    The symbolic twin of `features.pad_waveform` + `LogMel` + `features.patches`, for a
    model that takes a raw waveform of any length (the exported one).
    """

    def __init__(self, params: Params = PARAMS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.params = params
        self.log_mel = LogMel(params)

    def call(self, waveform):
        params = self.params
        samples = ops.shape(waveform)[0]
        after_first = ops.maximum(ops.cast(samples - params.min_samples, "float32"), 0.0)
        # float32 product with the reciprocal, as `features.num_patches` and the Hub graph.
        reciprocal = np.float32(1) / np.float32(params.patch_hop_samples)
        patches = 1 + ops.cast(ops.ceil(after_first * reciprocal), "int32")
        padded_length = params.min_samples + (patches - 1) * params.patch_hop_samples
        padded = ops.pad(waveform, [[0, padded_length - samples]])
        stft_frames = params.patch_frames + (patches - 1) * params.patch_hop_frames
        frames = _windows(padded, stft_frames, params.stft_window_samples, params.stft_hop_samples)
        log_mel = self.log_mel(frames)
        return _windows(log_mel, patches, params.patch_frames, params.patch_hop_frames)

    def compute_output_shape(self, input_shape):
        return (None, *self.params.patch_shape)
