"""Audio files -> float32 mono waveforms at YAMNet's 16 kHz.

Decoding is libsndfile's (`soundfile`: wav, flac, ogg, mp3, aiff, ...) and
resampling is `soxr`'s. Anything that would make YAMNet's output meaningless
(no samples, NaN or Inf, a file cut short) raises `AudioError`, whose message is
one line naming the file and the reason, so a long run can record it and go on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

from brogue.errors import BrogueError

YAMNET_SAMPLE_RATE = 16000


class AudioError(BrogueError):
    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def decode(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples [frames, channels] float32, sample rate), checked for damage."""
    # libsndfile calls a missing file a "System error"; say what it is.
    if not Path(path).is_file():
        raise AudioError(path, "no such file")
    if Path(path).stat().st_size == 0:
        raise AudioError(path, "empty file")
    try:
        with soundfile.SoundFile(str(path)) as sound:
            declared = sound.frames
            samples = sound.read(dtype="float32", always_2d=True)
            sample_rate = sound.samplerate
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(path, f"not readable as audio ({_first_line(error)})") from None
    if len(samples) == 0:
        raise AudioError(path, "holds no samples")
    if len(samples) < declared or _missing_wav_bytes(path):
        raise AudioError(path, "truncated: the header declares more audio than the file holds")
    if not np.isfinite(samples).all():
        raise AudioError(path, "contains NaN or Inf samples")
    return samples, sample_rate


def _missing_wav_bytes(path: str | Path) -> int:
    """Bytes a RIFF/WAVE file's `data` chunk declares beyond the end of the file.

    libsndfile quietly shortens a cut-off WAV to what is there, so a download that
    stopped early would otherwise pass as a shorter clip.
    """
    with open(path, "rb") as handle:
        if handle.read(12)[8:12] != b"WAVE":
            return 0
        while header := handle.read(8):
            if len(header) < 8:
                return 0
            chunk_id, size = header[:4], int.from_bytes(header[4:], "little")
            if chunk_id == b"data":
                available = Path(path).stat().st_size - handle.tell()
                # 0xFFFFFFFF marks a stream written without knowing its length.
                return 0 if size == 0xFFFFFFFF else max(0, size - available)
            handle.seek(size + size % 2, 1)
    return 0


def to_yamnet_input(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mix [frames, channels] down to mono and resample to 16 kHz, within [-1, 1]."""
    mono = samples.mean(axis=1, dtype=np.float32)
    if sample_rate != YAMNET_SAMPLE_RATE:
        mono = soxr.resample(mono, sample_rate, YAMNET_SAMPLE_RATE)
    # Resampling can ring a hair past full scale; YAMNet was trained on [-1, 1].
    return np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)


def load_audio(path: str | Path) -> np.ndarray:
    """The waveform YAMNet expects: float32, mono, 16 kHz, in [-1, 1]."""
    samples, sample_rate = decode(path)
    return to_yamnet_input(samples, sample_rate)


def _first_line(error: Exception) -> str:
    return (str(error).strip() or type(error).__name__).splitlines()[0]
