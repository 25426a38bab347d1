"""Audio files -> float32 mono waveforms at 16 kHz, the rate every encoder takes.

Decoding is libsndfile's (`soundfile`: wav, flac, ogg, mp3, aiff, ...) and
resampling is `soxr`'s. Anything that would make an encoder's output meaningless
(no samples, NaN or Inf, a file cut short) raises `AudioError`, whose message is
one line naming the file and the reason, so a long run can record it and go on.

A long recording is read in blocks (`load_block`): each block of the 16 kHz waveform is
decoded from its stretch of the file plus a margin either side, resampled on its own and
trimmed. soxr's output sample j depends only on input near j·rate/16000, and a block that
starts on a whole number of both rates' samples keeps the whole file's sample grid, so the
block equals that stretch of the whole file's waveform. Bit for bit at soxr's VHQ quality,
which computes in double precision; at HQ (single precision) blocks differed by 3e-7, which
the log-mel's quiet bands magnified to 1.3e-5 in embeddings. VHQ resamples 44.1 kHz at
3,600 audio-s/s against HQ's 4,700, in the decode worker, far above any encoder's rate.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile
import soxr

from brogue.errors import BrogueError

from .grid import SAMPLE_RATE  # what every encoder takes; re-exported for decoding's callers

# Input read on each side of a block: soxr's filters reach far less than this.
_RESAMPLE_MARGIN_SECONDS = 0.25
_RESAMPLE_QUALITY = "VHQ"


class AudioError(BrogueError):
    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def decode(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples [frames, channels] float32, sample rate), checked for damage."""
    declared, sample_rate = probe(path)
    return _read(path, 0, declared), sample_rate


def probe(path: str | Path) -> tuple[int, int]:
    """(frames the header declares, sample rate), for a file that looks whole."""
    # libsndfile calls a missing file a "System error"; say what it is.
    if not Path(path).is_file():
        raise AudioError(path, "no such file")
    if Path(path).stat().st_size == 0:
        raise AudioError(path, "empty file")
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(path, f"not readable as audio ({_first_line(error)})") from None
    if info.frames == 0:
        raise AudioError(path, "holds no samples")
    if _missing_wav_bytes(path):
        raise _truncated(path)
    return info.frames, info.samplerate


def _read(path: str | Path, start: int, frames: int) -> np.ndarray:
    """Frames start .. start + frames of the file, [frames, channels] float32, checked."""
    try:
        with soundfile.SoundFile(str(path)) as sound:
            sound.seek(start)
            if sound.subtype == "PCM_16":
                # What libsndfile's float read gives (x / 2^15 is exact), 2.6x faster.
                samples = sound.read(frames, dtype="int16", always_2d=True).astype(np.float32)
                samples *= np.float32(1 / 32768)
            else:
                samples = sound.read(frames, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(path, f"not readable as audio ({_first_line(error)})") from None
    if len(samples) < frames:
        raise _truncated(path)
    if not np.isfinite(samples).all():
        raise AudioError(path, "contains NaN or Inf samples")
    return samples


def _truncated(path: str | Path) -> AudioError:
    return AudioError(path, "truncated: the header declares more audio than the file holds")


def resampled_length(frames: int, sample_rate: int) -> int:
    """Samples of `to_encoder_input` for `frames` input frames: soxr rounds to the nearest."""
    return (2 * frames * SAMPLE_RATE + sample_rate) // (2 * sample_rate)


def load_block(path: str | Path, start: int, stop: int, frames: int, sample_rate: int
               ) -> np.ndarray:
    """Samples start:stop of `load_audio(path)`, reading only their stretch of the file.

    `frames` and `sample_rate` are what `probe` says of the file.
    """
    divisor = math.gcd(sample_rate, SAMPLE_RATE)
    step_in, step_out = sample_rate // divisor, SAMPLE_RATE // divisor
    margin = int(_RESAMPLE_MARGIN_SECONDS * sample_rate)
    # First input frame on both rates' grids, a margin before the block's first sample.
    first = max(0, (start * step_in // step_out - margin) // step_in * step_in)
    last = min(frames, -(-stop * step_in // step_out) + margin)
    waveform = to_encoder_input(_read(path, first, last - first), sample_rate)
    offset = first * step_out // step_in
    return waveform[start - offset : stop - offset]


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


def to_encoder_input(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mix [frames, channels] down to mono and resample to 16 kHz, within [-1, 1]."""
    # One channel is its own mean, bit for bit; numpy's mean over an axis of length one, and
    # the copies it and a clip into a new array made, took half the decode worker's time.
    if samples.shape[1] == 1:
        mono = samples[:, 0]
    else:
        mono = samples.mean(axis=1, dtype=np.float32)
    if sample_rate != SAMPLE_RATE:
        mono = soxr.resample(mono, sample_rate, SAMPLE_RATE, _RESAMPLE_QUALITY)
    else:
        mono = mono.copy()  # the clip below writes in place; the caller keeps its samples
    # Resampling can ring a hair past full scale; the encoders were trained on [-1, 1].
    return np.clip(mono, -1.0, 1.0, out=mono)


def load_audio(path: str | Path) -> np.ndarray:
    """The waveform every encoder takes: float32, mono, 16 kHz, in [-1, 1]."""
    samples, sample_rate = decode(path)
    return to_encoder_input(samples, sample_rate)


def _first_line(error: Exception) -> str:
    return (str(error).strip() or type(error).__name__).splitlines()[0]
