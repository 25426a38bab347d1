"""Where the frames of encoders with 20 ms states (hf:, whisper:) lie: YAMNet's grid, pooled
from the models' 50 Hz states.

Frame i covers samples [i·hop, i·hop + window) of the clip, window 0.96 s and hop 0.48 s, and
a clip of n samples has as many frames as YAMNet gives it. So the caches of one corpus line up
frame for frame whatever the encoder (YAMNet's speech mask fits any of them), and a long
recording's 16 s blocks, planned on YAMNet's count, join into exactly the whole recording's
frames. The models' frames are 20 ms apart (320 samples), so a window is 48 of them and the
hop 24: frame i is the mean of the model's frames 24i to 24i + 47 that lie in the clip.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from brogue.extract.grid import SAMPLE_RATE, SHARED_GRID, FrameGrid


@dataclasses.dataclass(frozen=True)
class Grid:
    frames: FrameGrid = SHARED_GRID  # YAMNet's, whose frame count it shares
    sample_rate: int = SAMPLE_RATE

    @property
    def window_s(self) -> float:
        return self.frames.window_s

    @property
    def hop_s(self) -> float:
        return self.frames.hop_s

    def model_frames(self, seconds: float, stride: int) -> int:
        """Model frames in `seconds`, for a model whose frames are `stride` samples apart."""
        frames = seconds * self.sample_rate / stride
        if frames != round(frames):
            raise ValueError(f"{seconds} s is not a whole number of {stride}-sample frames")
        return round(frames)


GRID = Grid()


def pool(states: np.ndarray, frames: int, window: int, hop: int) -> np.ndarray:
    """[frames, D]: row i the mean of states[i·hop : i·hop + window] (rows past the end left
    out) of a clip's model frames `states` [T, D]. Every window must start inside the clip."""
    starts = np.arange(frames) * hop
    if frames < 1 or starts[-1] >= len(states):
        raise ValueError(f"{frames} windows of hop {hop} do not start within {len(states)} frames")
    stops = np.minimum(starts + window, len(states))
    # Sums in float64 so that a difference of two long running sums keeps float32's precision.
    sums = np.concatenate([np.zeros((1, states.shape[1])), np.cumsum(states, 0, np.float64)])
    return ((sums[stops] - sums[starts]) / (stops - starts)[:, None]).astype(np.float32)
