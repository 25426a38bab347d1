"""YAMNet's front end, once, in keras.ops: waveform -> padding -> STFT -> log-mel -> patches.

The engine compiles it and runs it on every clip, `export` builds it into the SavedModel, and
the prediction plot draws the log-mel it returned. A numpy version lives in the tests only, as
the readable reference (`tests/yamnet_reference.py`).

The STFT has to be op for op the Hub graph's: where a clip is nearly empty in some bands (a
pure tone, a chirp), the Hub's values there are its own float32 FFT's rounding noise, of the
order of the 0.001 log offset, and only the same window bits and the same FFT reproduce them.
numpy's float64 STFT was 1.4e-3 off in log-mel and 1.5e-3 in embeddings on a 440 Hz tone,
numpy's float32 FFT with TensorFlow's window 1.3e-3, OpenVINO's RDFT 1.9e-3 (4.9e-3 on a chirp);
`ops.rfft`, on the TensorFlow backend the Hub graph's own op, 5e-6. That is why the front end
stays a Keras graph even when the network runs in OpenVINO.
"""

from __future__ import annotations

import math

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


def patch_count(samples, params: Params = PARAMS):
    """Frames YAMNet returns for a waveform of `samples` samples (at least one).

    The Hub graph divides in float32, and TensorFlow's optimiser turns the division into
    a product with float32(1 / hop): at 15600 + 7680·k samples that lands just above k
    for k = 3, 5, 6, 7, 10-15, ... and the Hub returns one frame more. So do we.
    """
    after_first = ops.maximum(ops.cast(samples - params.min_samples, "float32"), 0.0)
    reciprocal = np.float32(1) / np.float32(params.patch_hop_samples)
    return 1 + ops.cast(ops.ceil(after_first * reciprocal), "int32")


def frame(values, count, length: int, hop: int):
    """Rows values[k·hop : k·hop + length] for k < count, stacked on a new first axis.

    As `tf.signal.frame` does it: cut `values` into units of gcd(length, hop) rows and
    gather `length / unit` consecutive units per frame, so each copy moves a whole unit.
    Gathering single rows through a [count, length] index was 7x slower, strided slices 7x.
    """
    unit = math.gcd(length, hop)
    rest = tuple(values.shape[1:])
    units = ops.reshape(values[: (count - 1) * hop + length], (-1, unit, *rest))
    starts = ops.expand_dims(ops.arange(count) * (hop // unit), 1)
    selected = ops.take(units, starts + ops.arange(length // unit), axis=0)
    return ops.reshape(selected, (-1, length, *rest))


class LogMelPatches(keras.layers.Layer):
    """A 16 kHz waveform [samples] -> (log_mel [M, 64], patches [N, 96, 64]).

    The waveform is zero-padded at the end to fill a whole number of patches; log_mel is
    log(mel + offset) of its magnitude STFT (periodic Hann window, frames without centring).
    """

    def __init__(self, params: Params = PARAMS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.params = params
        self.window = hann_window(params.stft_window_samples)
        self.mel = ops.convert_to_tensor(mel_matrix(params), "float32")

    def call(self, waveform):
        params = self.params
        patches = patch_count(ops.shape(waveform)[0], params)
        padded_length = params.min_samples + (patches - 1) * params.patch_hop_samples
        padded = ops.pad(waveform, [[0, padded_length - ops.shape(waveform)[0]]])
        stft_frames = params.patch_frames + (patches - 1) * params.patch_hop_frames
        frames = frame(padded, stft_frames, params.stft_window_samples, params.stft_hop_samples)
        real, imag = ops.rfft(frames * self.window, fft_length=params.fft_length)
        magnitude = ops.sqrt(real * real + imag * imag)
        log_mel = ops.log(ops.matmul(magnitude, self.mel) + params.log_offset)
        return log_mel, frame(log_mel, patches, params.patch_frames, params.patch_hop_frames)

    def compute_output_shape(self, input_shape):
        return (None, self.params.mel_bands), (None, *self.params.patch_shape)


def build_front_end(params: Params = PARAMS) -> keras.Model:
    """`LogMelPatches` as a model, so the engine can compile it once for any waveform length."""
    waveform = keras.Input(batch_shape=(None,), name="waveform")
    return keras.Model(waveform, LogMelPatches(params, name="log_mel")(waveform),
                       name="yamnet_front_end")
