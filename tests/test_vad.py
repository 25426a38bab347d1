"""The speech rule for encoders without sound-event scores (extract/vad.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from brogue.extract import vad as speech_rule
from dev.signals import speech_like

SR = speech_rule.SAMPLE_RATE
# (window_s, hop_s): YAMNet's, a GE2E-like 1.6 s one, a 20 ms one, hops that leave gaps or
# do not divide the chunk.
GRIDS = [(0.96, 0.48), (1.6, 0.8), (0.025, 0.02), (0.5, 0.5), (0.3, 0.7), (0.75, 0.125)]

needs_silero = pytest.mark.skipif(
    importlib.util.find_spec("silero_vad") is None,
    reason=f"silero-vad is not installed (make setup runs {speech_rule.INSTALL})")


def sample_level_coverage(active: np.ndarray, unit: int, window: int, hop: int,
                          frames: int) -> np.ndarray:
    """The same share counted sample by sample, in whole samples."""
    samples = np.repeat(active.astype(float), unit)
    padded = np.zeros(max(len(samples), (frames - 1) * hop + window))
    padded[: len(samples)] = samples
    return np.array([padded[i * hop : i * hop + window].mean() for i in range(frames)])


@pytest.mark.parametrize("window_s,hop_s", GRIDS)
@pytest.mark.parametrize("chunks", [1, 7, 64, 301])
def test_coverage_counts_each_frames_share_on_any_grid(window_s, hop_s, chunks):
    active = np.random.default_rng(chunks).random(chunks) < 0.5
    window, hop = round(window_s * SR), round(hop_s * SR)
    frames = chunks * speech_rule.CHUNK_SAMPLES // hop + 2  # some frames run past the end
    got = speech_rule.coverage(active, speech_rule.CHUNK_S, window_s, hop_s, frames)
    want = sample_level_coverage(active, speech_rule.CHUNK_SAMPLES, window, hop, frames)
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_time_past_the_end_is_not_speech():
    share = speech_rule.coverage(np.ones(10), speech_rule.CHUNK_S, 10 * speech_rule.CHUNK_S,
                            5 * speech_rule.CHUNK_S, 4)
    np.testing.assert_allclose(share, [1.0, 0.5, 0.0, 0.0])


def test_mask_takes_chunks_above_the_probability_and_frames_above_the_share():
    # Frames of ten chunks; frame k has k chunks at 0.9 and the rest at exactly 0.5, which is
    # not speech. The share threshold sits between 1 and 2 chunks in 10.
    assert 0.1 <= speech_rule.MIN_SPEECH_FRACTION < 0.2
    probabilities = np.concatenate([[0.9] * k + [speech_rule.SPEECH_PROBABILITY] * (10 - k)
                                    for k in range(4)])
    frame_s = 10 * speech_rule.CHUNK_S
    mask = speech_rule.speech_mask(probabilities, frame_s, frame_s, 4)
    assert mask.tolist() == [False, False, True, True]


def test_chunk_blocks_put_each_chunk_after_its_context():
    call_samples = speech_rule.CHUNK_SAMPLES * speech_rule.CHUNKS_PER_CALL
    waveform = np.arange(call_samples + 700, dtype=np.float32)
    blocks = list(speech_rule.chunk_blocks(waveform))
    rows = np.concatenate(blocks)
    assert [b.shape for b in blocks] == [(speech_rule.CHUNKS_PER_CALL, 576)] * 2
    assert (rows[0, :64] == 0).all() and rows[0, 64] == 0 and rows[0, -1] == 511
    first_of_next_block = rows[speech_rule.CHUNKS_PER_CALL]
    start = speech_rule.CHUNKS_PER_CALL * speech_rule.CHUNK_SAMPLES
    assert first_of_next_block[:64].tolist() == list(range(start - 64, start))
    assert first_of_next_block[64] == start
    assert rows[speech_rule.CHUNKS_PER_CALL + 1, -1] == 0  # past the end: zeros


@pytest.fixture(scope="module")
def vad() -> speech_rule.SileroVad:
    return speech_rule.SileroVad()


def non_speech(seconds: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * SR)) / SR
    return {
        "silence": np.zeros_like(t),
        "white noise": 0.3 * rng.standard_normal(len(t)),
        "quiet noise": 0.01 * rng.standard_normal(len(t)),
        "tone": 0.3 * np.sin(2 * np.pi * 440 * t),
    }


@needs_silero
@pytest.mark.parametrize("seconds", [0.0, 0.3, 1.0, 4.1, 9.0])
def test_no_frame_of_silence_noise_or_a_tone_is_speech(vad, seconds):
    for name, waveform in non_speech(seconds).items():
        for window_s, hop_s in GRIDS:
            count = max(1, int(seconds // hop_s))
            mask = vad.masks([waveform], window_s, hop_s, [count])[0]
            assert mask.shape == (count,) and not mask.any(), (name, window_s, hop_s)


@needs_silero
@pytest.mark.parametrize("window_s,hop_s", GRIDS)
def test_speech_frames_line_up_with_where_the_speech_is(vad, window_s, hop_s):
    # 2 s of silence, 4 s of speech-like sound, 2 s of silence.
    talk = speech_like(4.0, np.random.default_rng(1))
    waveform = np.concatenate([np.zeros(2 * SR), talk, np.zeros(2 * SR)]).astype(np.float32)
    count = int((8.0 - window_s) // hop_s) + 1
    mask = vad.masks([waveform], window_s, hop_s, [count])[0]
    starts = np.arange(count) * hop_s
    silent = (starts + window_s <= 2.0) | (starts >= 6.2)  # Silero's decision trails ~0.1 s
    inside = (starts >= 2.0) & (starts + window_s <= 6.0)
    assert not mask[silent].any()
    assert mask[inside].mean() >= 0.8


@needs_silero
def test_speech_like_clips_are_mostly_speech_on_yamnets_grid(vad):
    rng = np.random.default_rng(2)
    clips = [speech_like(seconds, rng) for seconds in (1.5, 3.0, 6.0, 6.0)]
    counts = [int((len(c) / SR - 0.96) // 0.48) + 1 for c in clips]
    masks = vad.masks(clips, 0.96, 0.48, counts)
    assert [len(m) for m in masks] == counts
    assert np.concatenate(masks).mean() >= 0.9


@needs_silero
def test_probabilities_are_deterministic_and_do_not_depend_on_the_call_blocks(vad):
    waveform = speech_like(5.0, np.random.default_rng(3))  # 157 chunks: three calls
    first = vad.probabilities(waveform)
    assert len(first) == -(-len(waveform) // speech_rule.CHUNK_SAMPLES)
    np.testing.assert_array_equal(first, speech_rule.SileroVad().probabilities(waveform))
    # A prefix ends inside the second call: the state carried across calls, and the padding
    # after a clip, leave the chunks before unchanged.
    prefix = 70 * speech_rule.CHUNK_SAMPLES
    np.testing.assert_array_equal(vad.probabilities(waveform[:prefix]), first[:70])


@needs_silero
def test_the_weights_load_without_importing_silero_vad_or_torch():
    probe = ("import sys, numpy as np; from brogue.extract.vad import SileroVad; "
             "SileroVad().probabilities(np.zeros(8000, np.float32)); "
             "print(sorted({'silero_vad', 'torch', 'onnxruntime'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_a_missing_silero_vad_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(speech_rule.SpeechModelError, match="pip install --no-deps silero-vad=="):
        speech_rule.SileroVad()


def test_another_model_file_is_refused_naming_it(tmp_path):
    other = tmp_path / "vad.onnx"
    other.write_bytes(b"not silero")
    with pytest.raises(speech_rule.SpeechModelError, match=r"vad\.onnx: not the Silero VAD model"):
        speech_rule.SileroVad(other)
