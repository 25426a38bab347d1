"""The native engine computes TF Hub YAMNet's function: front end, BatchNorm folding, network.

`native` and `hub` are compared clip by clip on clips chosen to hit every padding case and every
kind of content: on the stand-in SavedModel where it is there, else on a random-weights one
written from tf.signal and plain tf ops (tests/yamnet_random.py), an independent implementation
of the same function. The other parts run on their own: the front end against `tf.signal`, the
folding against Keras's BatchNormalization, and the native engine's batching on seeded random
weights.
"""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from yamnet_random import published_front_end
from yamnet_reference import mel_matrix as reference_mel_matrix
from yamnet_reference import stft_magnitude, waveform_to_patches

from brogue.extract.audio import SAMPLE_RATE
from brogue.extract.engine import EncodedFrames as Frames
from brogue.extract.weights_store import ImportedWeights
from brogue.extract.yamnet.engines import HubEngine, NativeEngine
from brogue.extract.yamnet.features import lay_out
from brogue.extract.yamnet.frontend import LogMelPatches, hann_window, patch_count
from brogue.extract.yamnet.frontend import mel_matrix as frontend_mel_matrix
from brogue.extract.yamnet.host_frontend import HostLogMelPatches
from brogue.extract.yamnet.host_frontend import constants as host_constants
from brogue.extract.yamnet.network import build_yamnet, layer_weights
from brogue.extract.yamnet.params import PARAMS
from brogue.extract.yamnet.weights import (
    CLASS_MAP,
    assign_weights,
    fold_batch_norm,
    named_variables,
)
from dev.signals import speech_like

# Largest |native - hub| seen over CLIPS (float32), keras and openvino alike: embeddings 2.3e-5,
# scores 9.3e-6, log-mel 3.1e-5 (a chirp's near-empty bands). With a float64 mel matrix they
# were 3.4e-5, 1.1e-5 and 8.7e-5.
OUTPUT_TOLERANCE = 1e-4
LOG_MEL_TOLERANCE = 1.5e-4

FIRST = PARAMS.min_samples  # 15,600 samples: the shortest waveform that fills one patch
HOP = PARAMS.patch_hop_samples  # 7,680 samples between patches


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(list(name.encode()))


def _speech(count: int, rng: np.random.Generator) -> np.ndarray:
    return speech_like(count / SAMPLE_RATE, rng)


def _white(count: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-0.5, 0.5, count).astype(np.float32)


def _pink(count: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.normal(size=count))
    spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))  # power falls as 1/f
    pink = np.fft.irfft(spectrum, count)
    return (0.5 * pink / np.abs(pink).max()).astype(np.float32)


def _silence(count: int, rng: np.random.Generator) -> np.ndarray:
    return np.zeros(count, np.float32)


def _tone(count: int, rng: np.random.Generator) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * 440.0 * np.arange(count) / SAMPLE_RATE)).astype(
        np.float32
    )


def _chirp(count: int, rng: np.random.Generator) -> np.ndarray:
    seconds = count / SAMPLE_RATE
    time_s = np.arange(count) / SAMPLE_RATE
    phase = 2 * np.pi * (100.0 * time_s + (7000.0 - 100.0) * time_s**2 / (2 * seconds))
    return (0.5 * np.sin(phase)).astype(np.float32)


def _loud(count: int, rng: np.random.Generator) -> np.ndarray:
    speech = _speech(count, rng)
    return (0.999 * speech / np.abs(speech).max()).astype(np.float32)


def _quiet(count: int, rng: np.random.Generator) -> np.ndarray:
    return (_speech(count, rng) * 1e-4).astype(np.float32)


# name -> (samples, content). Lengths cover 0.1 s to 30 s and, at 15,600 + 7,680·k samples,
# the exact patch boundaries and one sample either side of them.
CLIPS = {
    "speech_0.1s": (1600, _speech),
    "speech_0.5s": (8000, _speech),
    "white_first_minus_1": (FIRST - 1, _white),
    "tone_first": (FIRST, _tone),
    "chirp_first_plus_1": (FIRST + 1, _chirp),
    "speech_hop1_minus_1": (FIRST + HOP - 1, _speech),
    "pink_hop1": (FIRST + HOP, _pink),
    "silence_hop1_plus_1": (FIRST + HOP + 1, _silence),
    "speech_hop5_minus_1": (FIRST + 5 * HOP - 1, _speech),
    "speech_hop5": (FIRST + 5 * HOP, _speech),
    "white_hop5_plus_1": (FIRST + 5 * HOP + 1, _white),
    "loud_hop12": (FIRST + 12 * HOP, _loud),
    "quiet_hop12_plus_1": (FIRST + 12 * HOP + 1, _quiet),
    "silence_3s": (48000, _silence),
    "tone_2s": (32000, _tone),
    "chirp_4s": (64000, _chirp),
    "white_5.5s": (88000, _white),
    "pink_10s": (160000, _pink),
    "speech_6.3s": (100800, _speech),
    "loud_7s": (112000, _loud),
    "quiet_3s": (48000, _quiet),
    "speech_30s": (480000, _speech),
}


def make_clip(name: str) -> np.ndarray:
    samples, content = CLIPS[name]
    return content(samples, _rng(name))


# --- native vs hub on the stand-in ---


@pytest.fixture(scope="module")
def hub_outputs(yamnet_handle: str) -> list[Frames]:
    return HubEngine(yamnet_handle).frames([make_clip(name) for name in CLIPS])


@pytest.fixture(scope="module", params=["keras", "openvino"])
def outputs(request, yamnet_handle: str, hub_outputs: list[Frames]
            ) -> dict[str, tuple[Frames, Frames]]:
    """(hub, native) frames per clip, for each fp32 runtime; native takes all clips in one
    call, so in shared batches."""
    engine = NativeEngine(yamnet_handle, runtime=request.param, batch_size=64)
    native = engine.frames([make_clip(name) for name in CLIPS])
    return dict(zip(CLIPS, zip(hub_outputs, native, strict=True), strict=True))


@pytest.mark.parametrize("name", list(CLIPS))
def test_native_matches_hub(outputs: dict[str, tuple[Frames, Frames]], name: str):
    hub, native = outputs[name]
    expected_frames = PARAMS.grid.frame_count(CLIPS[name][0])

    assert len(hub.scores) == len(native.scores) == expected_frames
    assert native.embeddings.shape == hub.embeddings.shape == (expected_frames, 1024)
    assert native.log_mel.shape == hub.log_mel.shape
    assert np.abs(native.embeddings - hub.embeddings).max() <= OUTPUT_TOLERANCE
    assert np.abs(native.scores - hub.scores).max() <= OUTPUT_TOLERANCE
    assert np.abs(native.log_mel - hub.log_mel).max() <= LOG_MEL_TOLERANCE


def test_clips_are_what_they_claim(real_yamnet_handle: str, hub_outputs: list[Frames]):
    """Guards the parity set itself: the speech-like clips must sound like speech to YAMNet's
    real weights (`hub_outputs` are theirs where `real_yamnet_handle` is there)."""
    speech = [name for name in CLIPS if name.startswith("speech_") and CLIPS[name][0] >= FIRST]
    assert len(speech) >= 4
    for name in speech:
        hub = hub_outputs[list(CLIPS).index(name)]
        assert hub.scores.mean(axis=0).argmax() == 0, f"{name} is not heard as Speech"


def test_folding_matches_the_saved_model_with_real_batch_norm(
    yamnet_handle: str, native_engine: NativeEngine
):
    """Give the SavedModel's BatchNorm other statistics (the stand-in's are neutral) and
    compare end to end."""
    from brogue.extract.yamnet.weights import load_saved_model

    saved_model = load_saved_model(yamnet_handle)  # a private copy: its variables are changed
    rng = np.random.default_rng(7)
    variables = [
        node for node in tf.train.TrackableView(saved_model).descendants()
        if isinstance(node, tf.Variable)
    ]
    for variable in variables:
        name = variable.name.removesuffix(":0")
        if name.endswith("/bn/moving_mean"):
            variable.assign(rng.normal(0.0, 0.05, variable.shape).astype(np.float32))
        elif name.endswith("/bn/moving_variance"):
            variable.assign(rng.uniform(0.8, 1.25, variable.shape).astype(np.float32))
    model = build_yamnet(PARAMS)
    assign_weights(model, named_variables(saved_model), yamnet_handle, PARAMS)
    waveform = make_clip("speech_6.3s")

    scores, embeddings, log_mel = saved_model(waveform)
    native_scores, native_embeddings = model.predict_on_batch(
        waveform_to_patches(waveform, PARAMS)[1]
    )

    assert np.abs(native_embeddings - embeddings.numpy()).max() <= OUTPUT_TOLERANCE
    assert np.abs(native_scores - scores.numpy()).max() <= OUTPUT_TOLERANCE
    # The new statistics did change the function, so the comparison above has teeth.
    (unchanged,) = native_engine.frames([waveform])
    assert np.abs(unchanged.embeddings - embeddings.numpy()).max() > 0.01


# --- the front end against tf.signal (no stand-in needed) ---


def test_mel_matrix_is_tensorflows_bit_for_bit():
    expected = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=64, num_spectrogram_bins=257, sample_rate=16000,
        lower_edge_hertz=125.0, upper_edge_hertz=7500.0,
    ).numpy()

    np.testing.assert_array_equal(keras.ops.convert_to_numpy(frontend_mel_matrix(PARAMS)),
                                  expected)
    # The numpy reference's float64 matrix is only close (8e-6 apart at most).
    np.testing.assert_allclose(reference_mel_matrix(PARAMS), expected, rtol=0, atol=2e-5)


def test_stft_magnitude_matches_tensorflow():
    waveform = np.random.default_rng(1).uniform(-1, 1, 20000).astype(np.float32)
    expected = tf.abs(
        tf.signal.stft(
            waveform,
            frame_length=PARAMS.stft_window_samples,
            frame_step=PARAMS.stft_hop_samples,
            fft_length=PARAMS.fft_length,
            window_fn=tf.signal.hann_window,  # periodic by default, as YAMNet's
        )
    ).numpy()

    magnitude = stft_magnitude(waveform.astype(np.float64), PARAMS)

    assert magnitude.shape == expected.shape
    np.testing.assert_allclose(magnitude, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("front_end", ["frontend.LogMelPatches", "numpy reference"])
def test_log_mel_patches_match_the_published_front_end(front_end: str):
    raw = np.random.default_rng(2).uniform(-1, 1, 40000).astype(np.float32)
    expected_log_mel, expected_patches = published_front_end(raw)

    if front_end == "numpy reference":
        log_mel, patches = waveform_to_patches(raw, PARAMS)
    else:
        log_mel, patches = (np.asarray(out) for out in LogMelPatches(PARAMS)(raw))

    assert patches.shape == expected_patches.shape == (5, 96, 64)
    assert log_mel.shape == expected_log_mel.shape
    np.testing.assert_allclose(log_mel, expected_log_mel, rtol=0, atol=LOG_MEL_TOLERANCE)
    np.testing.assert_allclose(patches, expected_patches, rtol=0, atol=LOG_MEL_TOLERANCE)


def test_front_end_on_clips_end_to_end_is_each_clip_alone():
    """Many clips in one call: each padded on its own, none framed into its neighbour."""
    rng = np.random.default_rng(4)
    lengths = [1, 1600, FIRST - 1, FIRST, FIRST + 3 * HOP, FIRST + 3 * HOP + 1, 48001]
    clips = [rng.uniform(-1, 1, n).astype(np.float32) for n in lengths]
    layer = LogMelPatches(PARAMS)

    log_mel, patches = (np.asarray(out) for out in layer(lay_out(clips, PARAMS)))

    alone = [waveform_to_patches(clip, PARAMS) for clip in clips]
    assert patches.shape == (sum(len(p) for _, p in alone), *PARAMS.patch_shape)
    np.testing.assert_allclose(log_mel, np.concatenate([m for m, _ in alone]), rtol=0,
                               atol=LOG_MEL_TOLERANCE)
    np.testing.assert_allclose(patches, np.concatenate([p for _, p in alone]), rtol=0,
                               atol=LOG_MEL_TOLERANCE)


def test_hann_window_is_tensorflows_bit_for_bit():
    window = keras.ops.convert_to_numpy(hann_window(PARAMS.stft_window_samples))

    np.testing.assert_array_equal(window, tf.signal.hann_window(PARAMS.stft_window_samples))


def test_host_front_end_constants_are_the_graphs_bit_for_bit():
    """numpy's cos and log round differently from TensorFlow's, so the host front end ships
    the graph's window and mel matrix; a pure tone's near-empty bands need their exact bits."""
    window, mel = host_constants(PARAMS)

    np.testing.assert_array_equal(window, keras.ops.convert_to_numpy(
        hann_window(PARAMS.stft_window_samples)))
    np.testing.assert_array_equal(mel, keras.ops.convert_to_numpy(frontend_mel_matrix(PARAMS)))


def test_host_front_end_is_the_keras_front_end():
    """Same clips laid out end to end: the same frames, and log-mel to float32 rounding (its FFT
    is bit for bit TensorFlow's; BLAS and numpy's log round differently from Eigen's)."""
    rng = np.random.default_rng(5)
    lengths = [1, FIRST, FIRST + 3 * HOP + 1, 48001]
    clips = [rng.uniform(-1, 1, n).astype(np.float32) for n in lengths]
    clips += [make_clip("tone_2s"), make_clip("chirp_4s"), make_clip("silence_3s")]
    laid_out = lay_out(clips, PARAMS)

    expected_log_mel, expected_patches = (np.asarray(out)
                                          for out in LogMelPatches(PARAMS)(laid_out))
    log_mel, patches = HostLogMelPatches(PARAMS)(*laid_out)

    assert log_mel.dtype == patches.dtype == np.float32
    assert patches.shape == expected_patches.shape
    np.testing.assert_allclose(log_mel, expected_log_mel, rtol=0, atol=2e-6)
    np.testing.assert_allclose(patches, expected_patches, rtol=0, atol=2e-6)


def test_engine_log_mel_is_the_published_front_end(random_engines):
    """The native engine's STFT is the Hub graph's ops in float32, so it matches to rounding."""
    waveform = make_clip("chirp_4s")
    expected, _ = published_front_end(waveform)

    log_mel = random_engines[256].frames([waveform])[0].log_mel

    assert log_mel.dtype == np.float32
    np.testing.assert_allclose(log_mel, expected, rtol=0, atol=1e-5)


# --- BatchNorm folding against Keras's own BatchNormalization (no stand-in needed) ---


def _batch_norm_statistics(prefix: str, channels: int, rng: np.random.Generator) -> dict:
    """Deliberately far from neutral, so that a folding mistake shows."""
    return {
        f"{prefix}/bn/beta": rng.normal(0.0, 0.5, channels).astype(np.float32),
        f"{prefix}/bn/moving_mean": rng.normal(0.0, 0.5, channels).astype(np.float32),
        f"{prefix}/bn/moving_variance": rng.uniform(0.05, 4.0, channels).astype(np.float32),
    }


def _unfolded(conv: keras.layers.Layer, statistics: dict, prefix: str, x: np.ndarray):
    """conv -> BatchNormalization(center, no scale, eps 1e-4) in inference -> ReLU, as YAMNet."""
    norm = keras.layers.BatchNormalization(
        center=True, scale=False, epsilon=PARAMS.batchnorm_epsilon
    )
    norm.build(conv.compute_output_shape(x.shape))
    norm.set_weights([statistics[f"{prefix}/bn/{name}"] for name in
                      ("beta", "moving_mean", "moving_variance")])
    return keras.ops.convert_to_numpy(keras.ops.relu(norm(conv(x), training=False)))


DENSE = {"dense/kernel": np.zeros((1024, 521), np.float32), "dense/bias": np.zeros(521, np.float32)}


@pytest.mark.parametrize("kind", ["conv", "depthwise_conv"])
def test_fold_batch_norm_matches_unfolded_layers(kind: str):
    rng = np.random.default_rng(3)
    channels_in, channels_out = 8, 8 if kind == "depthwise_conv" else 16
    x = rng.normal(size=(2, 12, 10, channels_in)).astype(np.float32)
    prefix = f"layer2/{kind}"
    statistics = _batch_norm_statistics(prefix, channels_out, rng)
    if kind == "conv":
        kernel_name, kernel_shape = "kernel", (3, 3, channels_in, channels_out)
        make = lambda **kw: keras.layers.Conv2D(channels_out, 3, padding="same", **kw)  # noqa: E731
    else:
        kernel_name, kernel_shape = "depthwise_kernel", (3, 3, channels_in, 1)
        make = lambda **kw: keras.layers.DepthwiseConv2D(3, padding="same", **kw)  # noqa: E731
    kernel = rng.normal(size=kernel_shape).astype(np.float32)
    raw = make(use_bias=False)
    raw.build(x.shape)
    raw.set_weights([kernel])

    folded = fold_batch_norm({f"{prefix}/{kernel_name}": kernel, **statistics, **DENSE}, PARAMS)
    fused = make(use_bias=True, activation="relu")
    fused.build(x.shape)
    fused.set_weights([folded[f"{prefix}/kernel"], folded[f"{prefix}/bias"]])

    expected = _unfolded(raw, statistics, prefix, x)
    actual = keras.ops.convert_to_numpy(fused(x))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    # The statistics matter: without them the answer is far off, so the check has teeth.
    ignored = keras.ops.convert_to_numpy(keras.ops.relu(raw(x) + statistics[f"{prefix}/bn/beta"]))
    assert np.abs(ignored - expected).max() > 0.1


# --- the native engine on seeded random weights (no stand-in needed) ---

RANDOM_SEED = 11
# Clip -> frames, counted by hand: one 15,600-sample window, one more per 7,680 samples begun,
# and at 54,000 samples (exactly 5 hops) the Hub's float32 arithmetic adds one (7, not 6).
BATCH_CLIPS = {"speech_0.1s": 1, "tone_first": 1, "pink_hop1": 2, "speech_hop5_minus_1": 6,
               "speech_hop5": 7, "chirp_4s": 8}  # fmt: skip


def write_random_weights(folder: Path, seed: int) -> ImportedWeights:
    """A YAMNet weights file with He-scaled random kernels, and a class map to go with it."""
    rng = np.random.default_rng(seed)
    model = build_yamnet(PARAMS)
    for name, variable in layer_weights(model).items():
        shape = tuple(variable.shape)
        if name.endswith("/bias"):
            value = rng.normal(0.0, 0.05, shape)
        else:
            fan_in = np.prod(shape[:-1]) if "depthwise" not in name else np.prod(shape[:2])
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        variable.assign(value.astype(np.float32))
    imported = ImportedWeights(f"random:{seed}", f"random{seed}",
                               folder / f"random{seed}.weights.h5")
    model.save_weights(imported.weights_path)
    with open(imported.beside(CLASS_MAP), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "mid", "display_name"])
        writer.writerows([i, f"/m/{i}", f"class {i}"] for i in range(PARAMS.num_classes))
    return imported


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> ImportedWeights:
    return write_random_weights(tmp_path_factory.mktemp("random-yamnet"), RANDOM_SEED)


@pytest.fixture(scope="module")
def random_engines(random_weights: ImportedWeights) -> dict[int, NativeEngine]:
    return {
        size: NativeEngine.from_imported(random_weights, batch_size=size) for size in (1, 7, 256)
    }


@pytest.fixture(scope="module")
def batch_clips() -> list[np.ndarray]:
    return [make_clip(name) for name in BATCH_CLIPS]


def test_random_engine_shapes_and_ranges(random_engines, batch_clips):
    engine = random_engines[256]
    assert engine.handle == "random:11" and engine.fingerprint == "random11"
    assert len(engine.class_names) == PARAMS.num_classes

    counts = BATCH_CLIPS.values()
    for count, frames in zip(counts, engine.frames(batch_clips), strict=True):
        assert frames.scores.shape == (count, PARAMS.num_classes)
        assert frames.embeddings.shape == (count, PARAMS.embedding_size)
        assert frames.log_mel.shape == (96 + 48 * (count - 1), 64)  # 96-frame patches, hop 48
        assert frames.scores.dtype == frames.embeddings.dtype == np.float32
        assert ((frames.scores > 0) & (frames.scores < 1)).all()
        assert (frames.embeddings >= 0).all()  # a mean of ReLU outputs
        assert frames.embeddings.std() > 0  # the random network is not dead


def test_one_batch_equals_clip_by_clip(random_engines, batch_clips):
    engine = random_engines[256]
    together = engine.frames(batch_clips)
    for waveform, joint in zip(batch_clips, together, strict=True):
        (alone,) = engine.frames([waveform])
        np.testing.assert_allclose(joint.embeddings, alone.embeddings, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(joint.scores, alone.scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(joint.log_mel, alone.log_mel)


def test_batch_sizes_agree(random_engines, batch_clips):
    results = {size: engine.frames(batch_clips) for size, engine in random_engines.items()}
    for size in (1, 7):
        for reference, other in zip(results[256], results[size], strict=True):
            np.testing.assert_allclose(other.embeddings, reference.embeddings, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(other.scores, reference.scores, rtol=1e-5, atol=1e-6)


def test_native_engine_is_deterministic(random_engines, random_weights, batch_clips):
    first = random_engines[7].frames(batch_clips)
    again = random_engines[7].frames(batch_clips)
    rebuilt = NativeEngine.from_imported(random_weights, batch_size=7).frames(batch_clips)
    for a, b, c in zip(first, again, rebuilt, strict=True):
        np.testing.assert_array_equal(a.embeddings, b.embeddings)
        np.testing.assert_array_equal(a.embeddings, c.embeddings)
        np.testing.assert_array_equal(a.scores, c.scores)


def test_keras_free_patch_count_is_the_front_ends():
    """`Params.grid.frame_count` (for decode workers) and `frontend.patch_count` (in the graph)
    are one formula; at 15600 + 7680·k samples the Hub's float32 product gives k + 2 for
    some k, and both must follow it."""
    lengths = [1, FIRST - 1, FIRST, FIRST + 1] + [FIRST + k * HOP + d for k in range(1, 40)
                                                  for d in (-1, 0, 1)]
    graph = keras.ops.convert_to_numpy(patch_count(np.array(lengths, np.int32), PARAMS))
    assert [PARAMS.grid.frame_count(n) for n in lengths] == graph.tolist()
    assert PARAMS.grid.frame_count(FIRST + 3 * HOP) == 5  # the Hub's extra frame
