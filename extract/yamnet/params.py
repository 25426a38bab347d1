"""Every hyperparameter of YAMNet in one frozen object.

Values are those of TF Hub `google/yamnet/1` (the official `params.py`). Derived
sizes are properties, so no other module repeats a magic number.
"""

from __future__ import annotations

import dataclasses
import json
import math

from brogue.extract.grid import SAMPLE_RATE, FrameGrid


@dataclasses.dataclass(frozen=True)
class Params:
    sample_rate: float = float(SAMPLE_RATE)
    stft_window_seconds: float = 0.025
    stft_hop_seconds: float = 0.010
    mel_bands: int = 64
    mel_min_hz: float = 125.0
    mel_max_hz: float = 7500.0
    log_offset: float = 0.001
    patch_window_seconds: float = 0.96
    patch_hop_seconds: float = 0.48
    num_classes: int = 521
    batchnorm_epsilon: float = 1e-4
    embedding_size: int = 1024

    @property
    def stft_window_samples(self) -> int:
        return int(round(self.sample_rate * self.stft_window_seconds))

    @property
    def stft_hop_samples(self) -> int:
        return int(round(self.sample_rate * self.stft_hop_seconds))

    @property
    def fft_length(self) -> int:
        return 2 ** int(math.ceil(math.log2(self.stft_window_samples)))

    @property
    def patch_frames(self) -> int:
        """Spectrogram frames in one patch (96)."""
        return int(round(self.patch_window_seconds / self.stft_hop_seconds))

    @property
    def patch_hop_frames(self) -> int:
        return int(round(self.patch_hop_seconds / self.stft_hop_seconds))

    @property
    def patch_hop_samples(self) -> int:
        return int(round(self.sample_rate * self.patch_hop_seconds))

    @property
    def min_samples(self) -> int:
        """Shortest waveform that fills one patch (15,600 samples = 0.975 s).

        The Hub graph computes this in float32 from seconds; rounding here gives
        the same integer it uses, which the parity test checks on exact lengths.
        """
        seconds = self.patch_window_seconds + self.stft_window_seconds - self.stft_hop_seconds
        return int(round(seconds * self.sample_rate))

    @property
    def grid(self) -> FrameGrid:
        """YAMNet's frames are its patches; each depends on `min_samples` of audio."""
        return FrameGrid(self.min_samples, self.patch_hop_samples, self.patch_window_seconds,
                         self.patch_hop_seconds)

    @property
    def patch_shape(self) -> tuple[int, int]:
        return (self.patch_frames, self.mel_bands)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


PARAMS = Params()
# Where YAMNet's weights come from unless --yamnet or $BROGUE_YAMNET names others.
DEFAULT_HANDLE = "https://tfhub.dev/google/yamnet/1"
