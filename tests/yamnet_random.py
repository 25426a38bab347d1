"""A random-weights YAMNet SavedModel with TF Hub `google/yamnet/1`'s interface, for a clone
without the stand-in (../shared/yamnet).

`model(waveform)` on a 1-D float32 16 kHz waveform returns (scores [N, 521], embeddings
[N, 1024], log_mel_spectrogram [M, 64]), `model.class_map_path()` names an asset CSV, and the
variables carry the Hub checkpoint's names and shapes (`layer1/conv/kernel`,
`layer2/depthwise_conv/bn/moving_mean`, ..., `dense/bias`), so brogue imports it as it imports
the real one. The graph is written here from tf.signal and plain tf ops, from the published
YAMNet description, sharing nothing with brogue's port: native against this model is still a
parity test of two independent implementations. BatchNorm is kept unfolded, with statistics
far from neutral, so the importer's folding is exercised.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import tensorflow as tf

# The published YAMNet constants (model card, official params.py).
RATE = 16000
STFT_WINDOW, STFT_HOP, FFT_LENGTH = 400, 160, 512  # 25 ms, 10 ms, samples
MEL_BANDS, MEL_LOW_HZ, MEL_HIGH_HZ, LOG_OFFSET = 64, 125.0, 7500.0, 0.001
PATCH_FRAMES, PATCH_HOP_FRAMES = 96, 48  # 0.96 s and 0.48 s of 10 ms frames
CLASSES, EMBEDDING = 521, 1024
FIRST_PATCH_SAMPLES = int(0.96 * RATE) + STFT_WINDOW - STFT_HOP  # samples behind one patch
BATCHNORM_EPSILON = 1e-4
# MobileNetV1 body, (kind, stride, output channels), every kernel 3x3 (official yamnet.py).
LAYERS = ((("conv", 2, 32),) + (("separable", 1, 64), ("separable", 2, 128),
          ("separable", 1, 128), ("separable", 2, 256), ("separable", 1, 256),
          ("separable", 2, 512)) + (("separable", 1, 512),) * 5
          + (("separable", 2, 1024), ("separable", 1, 1024)))  # fmt: skip
# The class map's first row, as in the real one; the rest are placeholders.
SPEECH = ("/m/09x0r", "Speech")


def published_log_mel(waveform: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(log_mel [M, 64], patches [N, 96, 64]) of a 1-D waveform, as YAMNet's model card
    describes its front end, from tf.signal and the published constants alone: zero-padded at
    the end to whole 0.96 s patches every 0.48 s; 25 ms periodic Hann windows every 10 ms, a
    512-point FFT; 64 mel bands from 125 to 7500 Hz; log(mel + 0.001); patches of 96 frames
    every 48. Works eagerly and inside a tf.function."""
    first_patch = FIRST_PATCH_SAMPLES
    patch_hop = int(0.48 * RATE)
    samples = tf.size(waveform)
    after_first = tf.maximum(0, samples - first_patch)
    # The Hub graph counts hops in float32, and TensorFlow's optimiser has turned its division
    # into a product with float32(1 / hop), which lands just above a whole number at some exact
    # patch boundaries (one frame more). Written as that product, the count does not depend on
    # whether the optimiser rewrites this graph.
    reciprocal = np.float32(1) / np.float32(patch_hop)
    hops = tf.cast(tf.math.ceil(tf.cast(after_first, tf.float32) * reciprocal), tf.int32)
    padded = tf.pad(waveform, [[0, first_patch + hops * patch_hop - samples]])
    magnitude = tf.abs(tf.signal.stft(padded, STFT_WINDOW, STFT_HOP, FFT_LENGTH,
                                      window_fn=tf.signal.hann_window))
    mel = tf.signal.linear_to_mel_weight_matrix(MEL_BANDS, FFT_LENGTH // 2 + 1, RATE,
                                                MEL_LOW_HZ, MEL_HIGH_HZ)
    log_mel = tf.math.log(tf.matmul(magnitude, mel) + LOG_OFFSET)
    return log_mel, tf.signal.frame(log_mel, PATCH_FRAMES, PATCH_HOP_FRAMES, axis=0)


def published_front_end(waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`published_log_mel` as numpy arrays."""
    log_mel, patches = published_log_mel(tf.constant(waveform, tf.float32))
    return log_mel.numpy(), patches.numpy()


def random_variables(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The Hub checkpoint's variables by name: He-scaled random kernels and random BatchNorm
    offsets; the BatchNorm statistics neutral until `network(..., calibrate=True)` measures them."""
    values: dict[str, np.ndarray] = {}

    def add(prefix: str, kernel_name: str, shape: tuple[int, ...], fan_in: int) -> None:
        channels = shape[2] if kernel_name == "depthwise_kernel" else shape[3]
        values[f"{prefix}/{kernel_name}"] = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        values[f"{prefix}/bn/beta"] = rng.normal(0.0, 0.5, channels)
        values[f"{prefix}/bn/moving_mean"] = np.zeros(channels)
        values[f"{prefix}/bn/moving_variance"] = np.ones(channels)

    channels = 1
    for index, (kind, _, filters) in enumerate(LAYERS, start=1):
        if kind == "conv":
            add(f"layer{index}/conv", "kernel", (3, 3, channels, filters), 9 * channels)
        else:
            add(f"layer{index}/depthwise_conv", "depthwise_kernel", (3, 3, channels, 1), 9)
            add(f"layer{index}/pointwise_conv", "kernel", (1, 1, channels, filters), channels)
        channels = filters
    values["dense/kernel"] = rng.normal(0.0, np.sqrt(1.0 / EMBEDDING), (EMBEDDING, CLASSES))
    values["dense/bias"] = np.zeros(CLASSES)
    return {name: value.astype(np.float32) for name, value in values.items()}


class RandomYamnet(tf.Module):
    """The Hub model's object layout: called on a waveform, with `class_map_path()`."""

    def __init__(self, values: dict[str, np.ndarray], class_map: Path):
        super().__init__()
        # Named as the checkpoint's, trainable as there (the BatchNorm statistics are not).
        self.weights = [tf.Variable(value, name=name, trainable="/moving_" not in name)
                        for name, value in values.items()]  # fmt: skip
        self._by_name = {v.name.removesuffix(":0"): v for v in self.weights}
        self.class_map = tf.saved_model.Asset(str(class_map))

    def _batch_norm_relu(self, x: tf.Tensor, prefix: str, calibrate: bool) -> tf.Tensor:
        bn = {name: self._by_name[f"{prefix}/bn/{name}"]
              for name in ("beta", "moving_mean", "moving_variance")}  # fmt: skip
        if calibrate:
            mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
            bn["moving_mean"].assign(mean)
            bn["moving_variance"].assign(variance)
        return tf.nn.relu(tf.nn.batch_normalization(
            x, bn["moving_mean"], bn["moving_variance"], offset=bn["beta"], scale=None,
            variance_epsilon=BATCHNORM_EPSILON,
        ))

    def network(self, patches: tf.Tensor, calibrate: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """Patches [N, 96, 64] -> (scores [N, 521], embeddings [N, 1024]).

        With `calibrate` (eagerly), each BatchNorm's statistics are first set to its input's
        mean and variance over `patches`, layer by layer, as training would have left them."""
        x = patches[..., None]
        for index, (kind, stride, _) in enumerate(LAYERS, start=1):
            strides = [1, stride, stride, 1]
            if kind == "conv":
                prefix = f"layer{index}/conv"
                x = tf.nn.conv2d(x, self._by_name[f"{prefix}/kernel"], strides, "SAME")
                x = self._batch_norm_relu(x, prefix, calibrate)
                continue
            prefix = f"layer{index}/depthwise_conv"
            x = tf.nn.depthwise_conv2d(x, self._by_name[f"{prefix}/depthwise_kernel"], strides,
                                       "SAME")
            x = self._batch_norm_relu(x, prefix, calibrate)
            prefix = f"layer{index}/pointwise_conv"
            x = tf.nn.conv2d(x, self._by_name[f"{prefix}/kernel"], 1, "SAME")
            x = self._batch_norm_relu(x, prefix, calibrate)
        embeddings = tf.reduce_mean(x, axis=[1, 2])
        logits = tf.matmul(embeddings, self._by_name["dense/kernel"]) + self._by_name["dense/bias"]
        return tf.sigmoid(logits), embeddings

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="waveform")])
    def __call__(self, waveform: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        log_mel, patches = published_log_mel(waveform)
        scores, embeddings = self.network(patches)
        return scores, embeddings, log_mel

    @tf.function(input_signature=[])
    def class_map_path(self) -> tf.Tensor:
        return self.class_map.asset_path


def write_class_map(path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "mid", "display_name"])
        writer.writerow([0, *SPEECH])
        writer.writerows([i, f"/m/random{i}", f"Class {i}"] for i in range(1, CLASSES))


def save_random_yamnet(folder: Path, speech: list[np.ndarray], sounds: list[np.ndarray],
                       seed: int = 0) -> Path:
    """A random-weights YAMNet SavedModel in `folder`, its class map an asset.

    Its BatchNorm statistics are measured layer by layer on the `speech` and other `sounds`
    waveforms, as training would have left them: far from neutral (the first layer's means
    reach +-6 and its variances 0.3-94), so that the importer's folding is exercised, and
    normalising each layer's input, so that the embeddings still depend on the audio after 14
    random layers. With random statistics instead, every clip's embeddings were the same to
    within 0.2%; with statistics of speech alone, white noise drove embeddings to 25, and two
    implementations' float32 difference past the parity tolerance.

    Random logits would make Speech (class 0) the top class of about one frame in 521, but the
    pipeline's tests need speech frames and non-speech frames alike (clips pooled over their
    speech frames, frames dropped as non-speech, a silent file with none). So Speech's weights
    point from silence's embedding to the mean of the `speech` frames', and its bias is the
    median, over those frames, of the margin it needs to win: Speech then wins on about half
    of speech-like frames, and silence stays furthest from it.
    """
    class_map = folder / "yamnet_class_map.csv"
    write_class_map(class_map)
    model = RandomYamnet(random_variables(np.random.default_rng(seed)), class_map)

    def patches(waveforms: list[np.ndarray]) -> tf.Tensor:
        return tf.concat([published_log_mel(tf.constant(w, tf.float32))[1] for w in waveforms], 0)

    model.network(tf.concat([patches(speech), patches(sounds)], 0), calibrate=True)
    embeddings = model.network(patches(speech))[1].numpy()
    silence = model.network(patches([np.zeros(FIRST_PATCH_SAMPLES, np.float32)]))[1].numpy()[0]
    kernel, bias = model._by_name["dense/kernel"], model._by_name["dense/bias"]
    towards_speech = embeddings.mean(axis=0) - silence
    # Unit length, as the random columns are near enough: its logits spread as theirs do.
    speech_column = towards_speech / np.linalg.norm(towards_speech)
    kernel.assign(np.concatenate([speech_column[:, None], kernel.numpy()[:, 1:]], axis=1))
    logits = embeddings @ kernel.numpy()
    margin = logits[:, 1:].max(axis=1) - logits[:, 0]
    bias.assign(np.concatenate([[np.median(margin)], bias.numpy()[1:]]).astype(np.float32))
    saved = folder / "yamnet"
    tf.saved_model.save(model, str(saved), signatures=model.__call__.get_concrete_function())
    return saved
