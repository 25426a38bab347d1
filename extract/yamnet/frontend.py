"""YAMNet's front end in keras.ops: waveform -> padding -> STFT -> log-mel -> patches.

`export` builds it into the SavedModel, and the prediction plot draws the log-mel it returned.
The engine runs its host twin (`host_frontend.py`: numpy and scipy's FFT, no TensorFlow), which
ships this module's window and mel matrix and is held to it by the tests. A float64 numpy
version lives in the tests only, as the readable reference (`tests/yamnet_reference.py`).

The STFT has to be op for op the Hub graph's: where a clip is nearly empty in some bands (a
pure tone, a chirp), the Hub's values there are its own float32 FFT's rounding noise, of the
order of the 0.001 log offset, and only the same window bits and the same FFT reproduce them.
numpy's float64 STFT was 1.4e-3 off in log-mel and 1.5e-3 in embeddings on a 440 Hz tone,
numpy's float32 FFT with TensorFlow's window 1.3e-3, OpenVINO's RDFT 1.9e-3 (4.9e-3 on a chirp);
`ops.rfft`, on the TensorFlow backend the Hub graph's own op, 5e-6. scipy's float32 FFT
(pocketfft) turned out bit for bit TensorFlow's, which is what lets the host twin exist.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from .features import log_mel_rows
from .params import PARAMS, Params


def hann_window(length: int):
    """The periodic Hann window exactly as `tf.signal.hann_window` computes it, op for op in
    float32; numpy's float64 window rounds differently in the last bit of some samples."""
    count = ops.arange(length, dtype="float32")
    return 0.5 - 0.5 * ops.cos(ops.convert_to_tensor(2 * np.pi, "float32") * count / length)


def mel_matrix(params: Params = PARAMS):
    """Triangular mel filters [fft_length // 2 + 1, mel_bands] (HTK mel scale, the DC row zero)
    exactly as `tf.signal.linear_to_mel_weight_matrix` computes them, op for op in float32:
    the Hub graph's own matrix. One computed in float64 was 8e-6 off it, which a chirp's
    near-empty bands magnified to 8.9e-5 in log-mel."""

    def mels(hertz):
        return 1127.0 * ops.log(1.0 + hertz / 700.0)

    def scalar(value: float):
        return ops.convert_to_tensor(value, "float32")

    bins = ops.linspace(scalar(0.0), scalar(params.sample_rate) / 2.0, params.fft_length // 2 + 1)
    bin_mels = ops.expand_dims(mels(bins[1:]), 1)
    edges = ops.linspace(mels(scalar(params.mel_min_hz)), mels(scalar(params.mel_max_hz)),
                         params.mel_bands + 2)
    lower, centre, upper = edges[None, :-2], edges[None, 1:-1], edges[None, 2:]
    rising = (bin_mels - lower) / (centre - lower)
    falling = (upper - bin_mels) / (upper - centre)
    return ops.pad(ops.maximum(0.0, ops.minimum(rising, falling)), [[1, 0], [0, 0]])


def patch_count(samples, params: Params = PARAMS):
    """Frames YAMNet returns for a waveform of `samples` samples (at least one).

    The Hub graph divides in float32, and TensorFlow's optimiser turns the division into
    a product with float32(1 / hop): at 15600 + 7680·k samples that lands just above k
    for k = 3, 5, 6, 7, 10-15, ... and the Hub returns one frame more. So do we.
    """
    after_first = ops.maximum(ops.cast(samples - params.min_samples, "float32"), 0.0)
    reciprocal = np.float32(1) / np.float32(params.patch_hop_samples)
    return 1 + ops.cast(ops.ceil(after_first * reciprocal), "int32")


def _ragged_range(counts, starts, step: int = 1):
    """Concatenated starts[c] + step·k for k < counts[c], for every c: ragged aranges."""
    owner = ops.repeat(ops.arange(ops.shape(counts)[0]), counts)
    first = ops.cumsum(counts) - counts
    return ops.take(starts, owner) + (ops.arange(ops.sum(counts)) - ops.take(first, owner)) * step


def frame(values, starts, length: int, unit: int):
    """Rows values[s·unit : s·unit + length] for each s in `starts`, on a new first axis.

    As `tf.signal.frame` does it: cut `values` into units of rows (`length` and every start
    are whole units) and gather `length / unit` consecutive units per frame, so each copy
    moves a whole unit. Gathering single rows through a [frames, length] index was 7x
    slower, strided slices 7x.
    """
    rest = tuple(values.shape[1:])
    units = ops.reshape(values, (-1, unit, *rest))
    selected = ops.take(units, ops.expand_dims(starts, 1) + ops.arange(length // unit), axis=0)
    return ops.reshape(selected, (-1, length, *rest))


class LogMelPatches(keras.layers.Layer):
    """Clips -> (log_mel [M, 64], patches [N, 96, 64]) of all of them, one after the other.

    Called on a 16 kHz waveform [samples], or on `lay_out(clips)`: (samples [S], lengths [C]),
    C clips end to end, each already followed by its padding. Each clip is zero-padded at its
    end to fill a whole number of patches; its log_mel is log(mel + offset) of its magnitude
    STFT (periodic Hann window, frames without centring), and its patches come from its own
    log_mel rows only. Many clips in one call ran 2.4x faster than one call per clip
    (`features.CLIPS_PER_FRONT_END_CALL`).
    """

    def __init__(self, params: Params = PARAMS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.params = params
        self.window = hann_window(params.stft_window_samples)
        self.mel = mel_matrix(params)

    def call(self, clips):
        params = self.params
        if isinstance(clips, (tuple, list)):
            padded, lengths = clips
            lengths = ops.cast(lengths, "int32")
        else:
            lengths = ops.expand_dims(ops.shape(clips)[0], 0)
            padded = ops.pad(clips, [[0, params.grid.padded_samples(patch_count(lengths[0], params))
                                      - lengths[0]]])
        patches = patch_count(lengths, params)
        # A padded clip is whole units of gcd(window, hop) samples, and its log-mel whole
        # units of gcd(patch, patch hop) rows, so no frame straddles two clips.
        padded_lengths = params.grid.padded_samples(patches)
        unit = math.gcd(params.stft_window_samples, params.stft_hop_samples)
        clip_frames = log_mel_rows(patches, params)
        starts = _ragged_range(clip_frames, (ops.cumsum(padded_lengths) - padded_lengths) // unit,
                               params.stft_hop_samples // unit)
        frames = frame(padded, starts, params.stft_window_samples, unit)
        real, imag = ops.rfft(frames * self.window, fft_length=params.fft_length)
        magnitude = ops.sqrt(real * real + imag * imag)
        log_mel = ops.log(ops.matmul(magnitude, self.mel) + params.log_offset)
        unit = math.gcd(params.patch_frames, params.patch_hop_frames)
        starts = _ragged_range(patches, (ops.cumsum(clip_frames) - clip_frames) // unit,
                               params.patch_hop_frames // unit)
        return log_mel, frame(log_mel, starts, params.patch_frames, unit)

    def compute_output_shape(self, input_shape):
        return (None, self.params.mel_bands), (None, *self.params.patch_shape)


def build_front_end(params: Params = PARAMS) -> keras.Model:
    """`LogMelPatches` on `lay_out`'s (samples, lengths) as a model, so the engine can compile
    it once for any number of clips of any lengths."""
    samples = keras.Input(batch_shape=(None,), name="samples")
    lengths = keras.Input(batch_shape=(None,), dtype="int32", name="lengths")
    outputs = LogMelPatches(params, name="log_mel")((samples, lengths))
    return keras.Model([samples, lengths], outputs, name="yamnet_front_end")
