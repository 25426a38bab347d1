"""How audio enters each family of models, and how many of its 20 ms frames belong to a clip.

- `ConvStack`: wav2vec2, HuBERT, WavLM, XLS-R read raw samples through a strided convolution
  stack. Clips of different lengths share a call padded and masked where the feature extractor
  asks for an attention mask; the others (wav2vec2-base, HuBERT base: group norm over time in
  the first convolution) change their output when padded, so their calls hold one length.
  Their feature extractor's rule (zero mean, unit variance) is numpy here, so that a run on the
  cached OpenVINO IR imports neither transformers nor torch.
- `WhisperWindow`: Whisper's encoder reads 30 s of log-mel, always: every clip is padded to
  30 s (the encoder refuses other lengths), so any clips share a call and nothing is masked.
  A 16 s block costs the encoder as much as 30 s. The log-mel is transformers' feature
  extractor's (`whisper:` is the encoder that runs Whisper without transformers).

`of` tells the family from the checkpoint's config.json and preprocessor_config.json.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from brogue.errors import BrogueError, require

Batch = tuple[np.ndarray, "np.ndarray | None"]  # the network's input, and its attention mask


# Wav2Vec2FeatureExtractor's defaults, for a preprocessor_config.json that leaves a setting out.
_CONV_FEATURES = {"return_attention_mask": False, "do_normalize": True, "padding_value": 0.0}
# The variance floor of Wav2Vec2FeatureExtractor's normalisation.
_VARIANCE_FLOOR = 1e-7


class ConvStack(NamedTuple):
    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    masks: bool  # the feature extractor asks for an attention mask
    normalize: bool  # each clip to zero mean and unit variance (`do_normalize`)
    padding_value: float  # the samples after a clip's end in a call

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

    def batch(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> Batch:
        """The clips padded to the longest, as Wav2Vec2FeatureExtractor gives them (bit for
        bit): each normalised over its own samples where padding is masked, else over the
        whole row, and its padding then set to `padding_value`."""
        waveforms = [np.pad(np.asarray(waveform, np.float32),
                            (0, max(0, self.min_samples - len(waveform))))
                     for waveform in waveforms]
        lengths = [len(waveform) for waveform in waveforms]
        values = np.full((len(waveforms), max(lengths)), self.padding_value, np.float32)
        mask = np.zeros(values.shape, np.int32)
        for row, waveform in enumerate(waveforms):
            values[row, : lengths[row]] = waveform
            mask[row, : lengths[row]] = 1
        if self.normalize:
            for row, length in zip(values, lengths, strict=True):
                kept = row[:length] if self.masks else row
                row[:] = (row - kept.mean()) / np.sqrt(kept.var() + _VARIANCE_FLOOR)
                if self.masks:
                    row[length:] = self.padding_value
        return values, mask if self.masks else None


class WhisperWindow(NamedTuple):
    hop_length: int  # log-mel hop in samples (160); the encoder halves the frame rate
    n_samples: int  # the 30 s every input is padded to
    features: Any  # transformers' WhisperFeatureExtractor, which computes the log-mel

    @property
    def stride(self) -> int:
        return 2 * self.hop_length

    shares_calls = True
    normalize = False

    def padded(self, samples: int) -> int:
        return self.n_samples

    def count(self, samples: int) -> int:
        """Encoder frame j is centred on sample 320·j: those centred inside the clip."""
        return max(1, -(-samples // self.stride))

    def batch(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> Batch:
        longest = max(len(waveform) for waveform in waveforms)
        if longest > self.n_samples:
            raise BrogueError(f"Whisper hears at most {self.n_samples / sample_rate:.0f} s at "
                              f"once, and a clip of {longest / sample_rate:.1f} s came")
        batch = self.features(list(waveforms), sampling_rate=sample_rate, return_tensors="np")
        return batch["input_features"].astype(np.float32), None


def of(config: dict[str, Any], features: dict[str, Any]) -> ConvStack | WhisperWindow | None:
    """The family of a model by its config.json and preprocessor_config.json; None for other
    models. Whisper's needs transformers, for its feature extractor."""
    if "conv_stride" in config:
        features = {**_CONV_FEATURES, **features}
        return ConvStack(tuple(config["conv_kernel"]), tuple(config["conv_stride"]),
                         bool(features["return_attention_mask"]), bool(features["do_normalize"]),
                         float(features["padding_value"]))
    if config.get("model_type") == "whisper":
        transformers = require("transformers", "hf", "a Whisper model under hf:")
        extractor = transformers.WhisperFeatureExtractor.from_dict(features)
        return WhisperWindow(extractor.hop_length, extractor.n_samples, extractor)
    return None
