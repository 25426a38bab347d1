"""The speech rule for encoders without sound-event scores: Silero VAD, run by OpenVINO.

YAMNet decides speech by its own scores (top class Speech). A speaker or speech encoder (GE2E,
`hf:` models) has no such scores, so its frames take their speech mask from Silero VAD, whose
ONNX export runs on OpenVINO, already brogue's CPU runtime: no torch, no onnxruntime.

Silero scores each 32 ms chunk (512 samples, with the 64 samples before it as context). A frame
of an encoder's grid, frame i covering [i * hop_s, i * hop_s + window_s), is speech when chunks
that Silero calls speech cover more than `MIN_SPEECH_FRACTION` of it; audio past the clip's end
(an encoder's padding) counts as not speech. docs/speech-mask.md gives the measurements behind
both thresholds.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from brogue.errors import BrogueError

from .grid import SAMPLE_RATE, FrameGrid  # Silero's 16k model's rate too

CHUNK_SAMPLES = 512  # one Silero decision per 32 ms
CONTEXT_SAMPLES = 64  # the samples of the previous chunk each chunk is scored with
CHUNK_S = CHUNK_SAMPLES / SAMPLE_RATE
# Chunks per OpenVINO call (2.05 s), a fixed shape: on this project's 2-core Xeon, 64 ran Silero
# over 1.5-6 s clips at 470 audio-s/s against 390 for 32, 320 for 128 and 210 with a dynamic
# shape; over accents-dev, 285 against 282 for 32 and 179 for 16 (the zeros cost little). The
# LSTM state carries across calls and is causal, so the zeros filling a clip's last call change
# nothing before them.
CHUNKS_PER_CALL = 64
_STATE_SHAPE = (1, 1, 128)

# Silero's own default: a chunk is speech when its probability exceeds 0.5.
SPEECH_PROBABILITY = 0.5
# A frame is speech when speech chunks cover more than this share of it. On accents-dev, on
# YAMNet's grid, shares of 0.10 and 0.15 agreed best with YAMNet's own rule (98.7% and 98.6% of
# 844 frames; 0.5: 89.0%); 0.15 keeps fewer mostly silent frames and calls as many frames
# speech as YAMNet does (91.1% against 91.6%). docs/speech-mask.md has the table.
MIN_SPEECH_FRACTION = 0.15

# The wheel that ships the weights, installed without its dependencies: it requires torch, which
# only its own Python code imports, and pip would fetch a multi-GB CUDA build for it.
REQUIREMENT = "silero-vad==6.2.3"
INSTALL = f"pip install --no-deps {REQUIREMENT}"
# Its sequence export: one call per block of chunks, where the streaming one takes a chunk.
MODEL_FILE = "silero_vad_16k_sequence.onnx"
MODEL_SHA256 = "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85"


class SpeechModelError(BrogueError):
    """The VAD's weights are missing or not the ones brogue was measured with."""


def coverage(active: np.ndarray, unit_s: float, window_s: float, hop_s: float,
             num_frames: int) -> np.ndarray:
    """Share [num_frames] of each frame [i*hop_s, i*hop_s + window_s) that `active` covers.

    `active` [T] is a 0/1 (or fractional) activity per unit of `unit_s` seconds from time 0;
    time past its end counts as inactive. Exact for any window and hop, aligned or not.
    """
    # One inactive unit past the end stands for all time after it.
    active = np.append(np.asarray(active, np.float64), 0.0)
    cumulative = np.concatenate([[0.0], np.cumsum(active)]) * unit_s  # active seconds to unit k

    def active_seconds(t: np.ndarray) -> np.ndarray:
        units = np.clip(t / unit_s, 0, len(active) - 1)
        whole = np.floor(units).astype(np.int64)
        return cumulative[whole] + (units - whole) * unit_s * active[whole]

    starts = np.arange(num_frames) * hop_s
    return (active_seconds(starts + window_s) - active_seconds(starts)) / window_s


def speech_mask(probabilities: np.ndarray, window_s: float, hop_s: float,
                num_frames: int) -> np.ndarray:
    """bool [num_frames]: the frames Silero's chunk `probabilities` call speech (module doc)."""
    speech = np.asarray(probabilities) > SPEECH_PROBABILITY
    return coverage(speech, CHUNK_S, window_s, hop_s, num_frames) > MIN_SPEECH_FRACTION


def chunk_blocks(waveform: np.ndarray) -> Iterator[np.ndarray]:
    """[CHUNKS_PER_CALL, 576] blocks: each 512-sample chunk after the 64 samples before it (zeros
    for the first, as in Silero's streaming model), the clip zero-padded to whole blocks."""
    blocks = max(1, -(-len(waveform) // (CHUNK_SAMPLES * CHUNKS_PER_CALL)))
    chunks = np.zeros((blocks * CHUNKS_PER_CALL, CHUNK_SAMPLES), np.float32)
    chunks.reshape(-1)[: len(waveform)] = waveform
    contexts = np.zeros((len(chunks), CONTEXT_SAMPLES), np.float32)
    contexts[1:] = chunks[:-1, -CONTEXT_SAMPLES:]
    rows = np.concatenate([contexts, chunks], axis=1)
    yield from rows.reshape(blocks, CHUNKS_PER_CALL, -1)


def installed_model() -> Path:
    """The ONNX file inside an installed silero-vad wheel, found without importing the package
    (its `__init__` imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise SpeechModelError(
            f"silero-vad is not installed: this encoder's speech rule needs its weights "
            f"({INSTALL})")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / MODEL_FILE


class SileroVad:
    """Silero VAD's sequence model on OpenVINO's CPU plugin, in fp32 so that masks are the same
    on every CPU (OpenVINO would pick bf16 by itself where the CPU has it)."""

    def __init__(self, path: Path | None = None) -> None:
        import openvino

        self.path = Path(path) if path is not None else installed_model()
        try:
            data = self.path.read_bytes()
        except OSError as error:
            raise SpeechModelError(f"{self.path}: cannot read the VAD model ({error.strerror}; "
                                   f"{INSTALL})") from None
        self.fingerprint = hashlib.sha256(data).hexdigest()
        if self.fingerprint != MODEL_SHA256:
            raise SpeechModelError(f"{self.path}: not the Silero VAD model brogue was measured "
                                   f"with (sha256 {self.fingerprint[:12]}, expected "
                                   f"{MODEL_SHA256[:12]})")
        core = openvino.Core()
        model = core.read_model(str(self.path))
        model.reshape({"input": [CHUNKS_PER_CALL, CHUNK_SAMPLES + CONTEXT_SAMPLES]})
        # One thread: two ran at half the speed (a call is too small to split), and the encoder
        # beside it wants the other core.
        self._compiled = core.compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1})
        self._request = self._compiled.create_infer_request()

    def probabilities(self, waveform: np.ndarray) -> np.ndarray:
        """float32 [ceil(len / 512)]: Silero's speech probability of each 32 ms chunk."""
        hidden = np.zeros(_STATE_SHAPE, np.float32)
        cell = np.zeros(_STATE_SHAPE, np.float32)
        parts = []
        for block in chunk_blocks(np.asarray(waveform, np.float32)):
            out = self._request.infer({"input": block, "h": hidden, "c": cell})
            parts.append(np.array(out["speech_probs"], np.float32).reshape(-1))
            hidden, cell = np.array(out["hn"]), np.array(out["cn"])
        return np.concatenate(parts)[: -(-len(waveform) // CHUNK_SAMPLES)]

    def __call__(self, waveform: np.ndarray, grid: FrameGrid) -> np.ndarray:
        """The speech mask of one waveform on an encoder's grid: a scoreless encoder's rule."""
        return self.masks([waveform], grid.window_s, grid.hop_s,
                          [grid.frame_count(len(waveform))])[0]  # fmt: skip

    def masks(self, waveforms: Iterable[np.ndarray], window_s: float, hop_s: float,
              counts: Iterable[int]) -> list[np.ndarray]:
        """The speech mask of each waveform on an encoder's grid of `counts` frames."""
        return [speech_mask(self.probabilities(waveform), window_s, hop_s, count)
                for waveform, count in zip(waveforms, counts, strict=True)]
