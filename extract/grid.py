"""An encoder's frame grid: how many frames a waveform gives, and how long a block must be.

Frame i of a clip covers samples [i * hop, i * hop + window) of the clip zero-padded to
`padded_samples(frame_count(n))`: at least one frame, and a last frame that may run past the
end. Keras-free and picklable, so decode workers plan a long recording's blocks with it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

SAMPLE_RATE = 16000  # every encoder's input: mono float32 at 16 kHz


@dataclasses.dataclass(frozen=True)
class FrameGrid:
    window_samples: int  # samples one frame depends on
    hop_samples: int
    window_s: float  # the frame's nominal window, as recorded in the cache
    hop_s: float

    def frame_counts(self, lengths: np.ndarray) -> np.ndarray:
        """Frames of waveforms of each length, in float32 as TF Hub's YAMNet graph counts them
        (its parity test checks exact hop multiples)."""
        after_first = np.maximum(np.asarray(lengths, np.int64) - self.window_samples, 0)
        reciprocal = np.float32(1) / np.float32(self.hop_samples)
        return 1 + np.ceil(after_first.astype(np.float32) * reciprocal).astype(np.int64)

    def frame_count(self, num_samples: int) -> int:
        return int(self.frame_counts(np.array([num_samples]))[0])

    def padded_samples(self, frames):
        """Samples of a waveform zero-padded to hold `frames` whole frames (ints, arrays and
        tensors alike)."""
        return self.window_samples + (frames - 1) * self.hop_samples


# YAMNet's grid (0.96 s windows every 0.48 s; a window reads 15,600 samples, `yamnet/params.py`
# derives it), stated here for encoders that pool onto it (hf): their caches then line up frame
# for frame with YAMNet's, and YAMNet's speech mask fits them. A test holds YAMNet's to it.
SHARED_GRID = FrameGrid(15600, 7680, 0.96, 0.48)
