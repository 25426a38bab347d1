"""The random-weights YAMNet of tests/yamnet_random.py: TF Hub YAMNet's interface and variables,
a Speech class that behaves as the pipeline's tests need, and brogue's port computing it.

It is `yamnet_handle` in a clone without the stand-in; these tests run it in every clone.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tensorflow as tf
from test_yamnet_parity import LOG_MEL_TOLERANCE, OUTPUT_TOLERANCE, make_clip

from brogue.cache import YAMNET_SPEECH_CLASS as SPEECH_CLASS
from brogue.extract.yamnet.engines import HubEngine, NativeEngine
from brogue.extract.yamnet.params import PARAMS
from dev.signals import speech_like

# One clip of each padding case and kind of content that matters to a random network.
PARITY_CLIPS = ("speech_hop5", "white_first_minus_1", "chirp_4s", "silence_hop1_plus_1")


@pytest.fixture(scope="module")
def model(random_yamnet_handle: str):
    return tf.saved_model.load(random_yamnet_handle)


def test_called_on_a_waveform_as_the_hub_model_is(model) -> None:
    waveform = speech_like(3.0, np.random.default_rng(1))  # 48,000 samples: 6 patches

    scores, embeddings, log_mel = (out.numpy() for out in model(waveform))

    assert scores.shape == (6, PARAMS.num_classes) and embeddings.shape == (6, 1024)
    assert log_mel.shape == (96 + 5 * 48, 64)
    assert ((scores > 0) & (scores < 1)).all() and (embeddings >= 0).all()
    outputs = model.signatures["serving_default"].structured_outputs
    assert sorted(outputs) == ["output_0", "output_1", "output_2"]


def test_class_map_is_an_asset_like_the_real_one(model) -> None:
    with open(model.class_map_path().numpy().decode(), newline="") as handle:
        rows = list(csv.reader(handle))

    assert rows[0] == ["index", "mid", "display_name"]
    assert len(rows) == 1 + PARAMS.num_classes
    assert rows[1 + SPEECH_CLASS] == [str(SPEECH_CLASS), "/m/09x0r", "Speech"]


def test_speech_wins_on_some_speech_like_frames_and_never_on_silence(model) -> None:
    """What the pipeline's tests rely on: clips with speech and non-speech frames, and a
    silent file with none."""
    rng = np.random.default_rng(5)
    top = np.concatenate([model(speech_like(6.0, rng))[0].numpy().argmax(axis=1)
                          for _ in range(6)])  # fmt: skip
    silence = model(np.zeros(48000, np.float32))[0].numpy().argmax(axis=1)

    assert 0.2 <= (top == SPEECH_CLASS).mean() <= 0.8
    assert not (silence == SPEECH_CLASS).any()


def test_embeddings_depend_on_the_audio(model) -> None:
    """Calibrated BatchNorm keeps the audio alive through 14 random layers: frames of one clip
    differ from each other, and clips from each other, by a good part of their size."""
    rng = np.random.default_rng(6)
    clips = [model(speech_like(4.0, rng, pitch_hz=pitch))[1].numpy() for pitch in (100, 220)]

    size = np.abs(np.concatenate(clips)).mean()
    assert min(clip.std(axis=0).mean() for clip in clips) > 0.2 * size
    assert np.abs(clips[0].mean(axis=0) - clips[1].mean(axis=0)).mean() > 0.05 * size


def test_the_native_engine_imports_and_computes_it(random_yamnet_handle: str) -> None:
    """brogue's importer folds its unfolded BatchNorm, and brogue's port, written apart from
    tests/yamnet_random.py, computes the same function."""
    clips = [make_clip(name) for name in PARITY_CLIPS]
    hub = HubEngine(random_yamnet_handle).frames(clips)
    native = NativeEngine(random_yamnet_handle, batch_size=64).frames(clips)

    for expected, ours in zip(hub, native, strict=True):
        assert ours.embeddings.shape == expected.embeddings.shape
        assert np.abs(ours.embeddings - expected.embeddings).max() <= OUTPUT_TOLERANCE
        assert np.abs(ours.scores - expected.scores).max() <= OUTPUT_TOLERANCE
        assert np.abs(ours.log_mel - expected.log_mel).max() <= LOG_MEL_TOLERANCE
