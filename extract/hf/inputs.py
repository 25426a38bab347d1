"""How audio enters each family of models, and how many of its 20 ms frames belong to a clip.

- `ConvStack`: wav2vec2, HuBERT, WavLM, XLS-R read raw samples through a strided convolution
  stack. Clips of different lengths share a call padded and masked where the feature extractor
  asks for an attention mask; the others (wav2vec2-base, HuBERT base: group norm over time in
  the first convolution) change their output when padded, so their calls hold one length.
- `WhisperWindow`: Whisper's encoder reads 30 s of log-mel, always: every clip is padded to
  30 s (the encoder refuses other lengths), so any clips share a call and nothing is masked.
  A 16 s block costs the encoder as much as 30 s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from brogue.errors import BrogueError

Batch = tuple[np.ndarray, "np.ndarray | None"]  # the network's input, and its attention mask


class ConvStack(NamedTuple):
    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    masks: bool  # the feature extractor asks for an attention mask

    @property
    def stride(self) -> int:
        """Samples between consecutive model frames (320: 20 ms)."""
        return math.prod(self.strides)

    @property
    def shares_calls(self) -> bool:
        """Whether clips of different lengths may share one network call."""
        return self.masks

    @property
    def min_samples(self) -> int:
        """The receptive field of one frame (400 samples): shorter clips are zero-padded to it."""
        field = 1
        for kernel, stride in zip(reversed(self.kernels), reversed(self.strides), strict=True):
            field = (field - 1) * stride + kernel
        return field

    def padded(self, samples: int) -> int:
        """The samples a clip of `samples` takes in a call by itself."""
        return max(samples, self.min_samples)

    def count(self, samples: int) -> int:
        """The model frames of a clip of `samples` samples."""
        samples = self.padded(samples)
        for kernel, stride in zip(self.kernels, self.strides, strict=True):
            samples = (samples - kernel) // stride + 1
        return samples

    def batch(self, features: Any, waveforms: Sequence[np.ndarray], sample_rate: int) -> Batch:
        waveforms = [np.pad(waveform, (0, max(0, self.min_samples - len(waveform))))
                     for waveform in waveforms]
        batch = features(waveforms, sampling_rate=sample_rate, padding="longest",
                         return_attention_mask=self.masks, return_tensors="np")
        return batch["input_values"].astype(np.float32), batch.get("attention_mask")


class WhisperWindow(NamedTuple):
    hop_length: int  # log-mel hop in samples (160); the encoder halves the frame rate
    n_samples: int  # the 30 s every input is padded to

    @property
    def stride(self) -> int:
        return 2 * self.hop_length

    shares_calls = True

    def padded(self, samples: int) -> int:
        return self.n_samples

    def count(self, samples: int) -> int:
        """Encoder frame j is centred on sample 320·j: those centred inside the clip."""
        return max(1, -(-samples // self.stride))

    def batch(self, features: Any, waveforms: Sequence[np.ndarray], sample_rate: int) -> Batch:
        longest = max(len(waveform) for waveform in waveforms)
        if longest > self.n_samples:
            raise BrogueError(f"Whisper hears at most {self.n_samples / sample_rate:.0f} s at "
                              f"once, and a clip of {longest / sample_rate:.1f} s came")
        batch = features(list(waveforms), sampling_rate=sample_rate, return_tensors="np")
        return batch["input_features"].astype(np.float32), None


def of(config: Any, features: Any) -> ConvStack | WhisperWindow | None:
    """The family of a model by its config and feature extractor; None for other models."""
    if hasattr(config, "conv_stride"):
        return ConvStack(tuple(config.conv_kernel), tuple(config.conv_stride),
                         bool(features.return_attention_mask))
    if config.model_type == "whisper":
        return WhisperWindow(features.hop_length, features.n_samples)
    return None
