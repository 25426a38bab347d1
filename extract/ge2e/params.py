"""Every setting of the GE2E encoder in one frozen object, Resemblyzer's values.

Resemblyzer (`hparams.py`): 40 mel bands of power over 25 ms windows every 10 ms at 16 kHz,
partial utterances of 160 mel frames (1.6 s), 3 LSTM layers of 256, a 256-d embedding, and
utterances raised (never lowered) to -30 dBFS.

Brogue's frame grid (one rule for every encoder, `extract/grid.py`): frame i is the window of
160 mel frames starting at sample i * hop, over the clip zero-padded at the end to hold whole
windows. So a clip shorter than one window gives one frame, padded as Resemblyzer pads it, and
the last frame covers the clip's end however little of it is left (Resemblyzer drops a last
partial under 75% covered). Each window depends only on its own 25,840 samples: mel frames are
not centred (Resemblyzer pads 200 zeros before the first; a 12.5 ms shift) and each window is
raised to -30 dBFS by itself (Resemblyzer raises the whole utterance, after cutting its silences
with webrtcvad). That keeps a long recording read in blocks equal to the whole file read at once.
On ../shared/accents-dev (195 clips), the mean of a clip's frames lies at cosine 0.98 (mean; min
0.88) from Resemblyzer's `embed_utterance` of the same clip raised to -30 dBFS, and 0.96 (min
0.78) from it after `preprocess_wav`'s silence trimming too.

The hop is Resemblyzer's: 1.3 partials per second, round(16000 / 1.3 / 160) = 77 mel frames,
0.77 s; its accent numbers in issue 18 were measured on that grid. YAMNet's 0.48 s would cost
1.6x the network time for windows that overlap by 70% instead of 52%.
"""

from __future__ import annotations

import dataclasses

from brogue.extract.grid import SAMPLE_RATE, FrameGrid

# The wheel that ships GE2E's weights (`pretrained.pt`). Its own requirements (an unpinned torch,
# librosa, webrtcvad) are never used: `make setup` installs it with --no-deps.
WEIGHTS_WHEEL = "resemblyzer==0.1.4"


@dataclasses.dataclass(frozen=True)
class Params:
    sample_rate: int = SAMPLE_RATE
    mel_window_samples: int = 400  # 25 ms; also the FFT length (201 bins)
    mel_hop_samples: int = 160  # 10 ms
    mel_bands: int = 40  # Slaney mel scale and area normalisation, 0 Hz to Nyquist (librosa's)
    window_frames: int = 160  # mel frames per window (1.6 s)
    hop_frames: int = 77  # mel frames between windows (0.77 s)
    target_dbfs: float = -30.0  # each window's RMS is raised to this, never lowered
    lstm_layers: int = 3
    lstm_units: int = 256
    embedding_size: int = 256

    @property
    def window_samples(self) -> int:
        """Samples one window's mel frames read (25,840 = 1.615 s)."""
        return (self.window_frames - 1) * self.mel_hop_samples + self.mel_window_samples

    @property
    def hop_samples(self) -> int:
        return self.hop_frames * self.mel_hop_samples

    @property
    def grid(self) -> FrameGrid:
        return FrameGrid(self.window_samples, self.hop_samples,
                         self.window_frames * self.mel_hop_samples / self.sample_rate,
                         self.hop_samples / self.sample_rate)

    @property
    def window_shape(self) -> tuple[int, int]:
        return (self.window_frames, self.mel_bands)


PARAMS = Params()
