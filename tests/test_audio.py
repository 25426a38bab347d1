"""extract/audio.py: every format we meet decodes to YAMNet's input, and damage is named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from brogue.extract.audio import SAMPLE_RATE, AudioError, load_audio

TONE_HZ = 1000.0


def tone(seconds: float, sample_rate: int, hertz: float = TONE_HZ) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * hertz * t)).astype(np.float32)


def dominant_hertz(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return float(np.argmax(spectrum) * sample_rate / len(waveform))


def relative_error(waveform: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(waveform - reference) / np.linalg.norm(reference))


# Lossless formats give back the 16-bit samples (measured 4e-5); the lossy codecs keep
# length and pitch and come within 4% of the waveform (measured 0.038 for both).
@pytest.mark.parametrize(
    ("suffix", "subtype", "tolerance"),
    [
        ("wav", "PCM_16", 1e-4),
        ("flac", "PCM_16", 1e-4),
        ("ogg", "VORBIS", 0.06),
        ("mp3", "MPEG_LAYER_III", 0.06),
    ],
)
def test_decodes_each_format(tmp_path: Path, suffix: str, subtype: str, tolerance: float):
    original = tone(1.0, SAMPLE_RATE)
    path = tmp_path / f"tone.{suffix}"
    soundfile.write(path, original, SAMPLE_RATE, subtype=subtype)

    waveform = load_audio(path)

    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert len(waveform) == len(original)
    assert relative_error(waveform, original) <= tolerance
    assert dominant_hertz(waveform) == pytest.approx(TONE_HZ, abs=1.0)


@pytest.mark.parametrize("channels", [1, 2])
def test_16_bit_pcm_reads_as_libsndfiles_own_float_samples(tmp_path: Path, channels: int):
    """16-bit files are read as integers and scaled by brogue: the bits must not change."""
    rng = np.random.default_rng(0)
    samples = rng.integers(-32768, 32768, (16000, channels), dtype=np.int16)
    samples[:2] = [[-32768], [32767]]  # both ends of the scale
    path = tmp_path / "pcm16.wav"
    soundfile.write(path, samples, SAMPLE_RATE, subtype="PCM_16")
    expected = soundfile.read(path, dtype="float32", always_2d=True)[0]

    waveform = load_audio(path)

    assert waveform.dtype == np.float32
    np.testing.assert_array_equal(waveform, expected.mean(axis=1, dtype=np.float32))


def test_stereo_is_mixed_down_to_the_channel_mean(tmp_path: Path):
    left, right = tone(0.5, SAMPLE_RATE, 440.0), tone(0.5, SAMPLE_RATE, 1000.0)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")

    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-7)


def test_opposite_channels_cancel(tmp_path: Path):
    left = tone(0.5, SAMPLE_RATE)
    path = tmp_path / "antiphase.wav"
    soundfile.write(path, np.stack([left, -left], axis=1), SAMPLE_RATE, subtype="FLOAT")

    assert np.abs(load_audio(path)).max() == 0.0


@pytest.mark.parametrize("sample_rate", [48000, 44100, 8000])
def test_resamples_to_16k_keeping_length_and_pitch(tmp_path: Path, sample_rate: int):
    seconds = 1.5
    path = tmp_path / f"tone_{sample_rate}.wav"
    soundfile.write(path, tone(seconds, sample_rate), sample_rate, subtype="PCM_16")

    waveform = load_audio(path)

    assert len(waveform) == round(seconds * SAMPLE_RATE)
    assert dominant_hertz(waveform) == pytest.approx(TONE_HZ, abs=1.0)
    # The level survives too: a filter in the wrong place would change the tone's RMS.
    assert np.sqrt(np.mean(waveform[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_output_stays_within_full_scale(tmp_path: Path):
    # A full-scale square wave rings past +-1 when it is resampled (Gibbs).
    square = np.sign(tone(1.0, 44100, 441.0)).astype(np.float32)
    path = tmp_path / "square.wav"
    soundfile.write(path, square, 44100, subtype="FLOAT")

    waveform = load_audio(path)

    assert waveform.dtype == np.float32
    assert np.abs(waveform).max() <= 1.0


def test_a_tenth_of_a_second_is_a_valid_clip(tmp_path: Path):
    path = tmp_path / "short.wav"
    soundfile.write(path, tone(0.1, SAMPLE_RATE), SAMPLE_RATE)

    assert len(load_audio(path)) == 1600


def _valid_wav(path: Path) -> bytes:
    soundfile.write(path, tone(1.0, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    return path.read_bytes()


def _non_finite(value: float):
    def write(path: Path) -> None:
        samples = tone(0.5, SAMPLE_RATE)
        samples[100] = value
        soundfile.write(path, samples, SAMPLE_RATE, subtype="FLOAT")

    return write


DAMAGED = {
    "empty": (lambda path: path.write_bytes(b""), "empty"),
    "truncated": (lambda path: path.write_bytes(_valid_wav(path)[:-5000]), "truncated"),
    "cut_by_one_byte": (lambda path: path.write_bytes(_valid_wav(path)[:-1]), "truncated"),
    "text": (lambda path: path.write_text("a shopping list, not audio\n" * 20), "not readable"),
    "nan": (_non_finite(np.nan), "NaN"),
    "inf": (_non_finite(np.inf), "Inf"),
    "no_samples": (
        lambda path: soundfile.write(path, np.zeros(0, np.float32), SAMPLE_RATE),
        "no samples",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damage_is_one_line_naming_file_and_reason(tmp_path: Path, case: str):
    write, reason = DAMAGED[case]
    path = tmp_path / f"{case}.wav"
    write(path)

    with pytest.raises(AudioError) as caught:
        load_audio(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert reason in message
    assert "\n" not in message
    assert caught.value.path == str(path)


def test_missing_file_is_named_as_missing(tmp_path: Path):
    path = tmp_path / "nowhere.wav"

    with pytest.raises(AudioError) as caught:
        load_audio(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "no such file" in message
    assert "\n" not in message
