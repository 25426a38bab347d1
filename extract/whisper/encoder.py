"""`whisper:MODEL[@LAYER]` behind the Encoder protocol: clips in, frames on the grid out, in order.

Each clip is heard with a context of its own length: its log-mel covers the clip padded to
whole 20 ms states, and the positional table is cut to that many rows, where Whisper's own
front end pads every input to 30 s. On accents-dev, tiny.en's clip balanced accuracy at layers
0-3 moved by -0.03 to +0.02 with 30 s padding, inside every interval, and the stage ran 5-20x
faster heard alone (docs/benchmarks.md, "Whisper's window and layer"). A waveform longer than
one block of the grid (a recording handed over whole, by predict or the server) is heard in the
blocks extraction would cut it into (`decode.blocks`), so both give the same frames.

The states are pooled onto the frame grid `hf:` uses (`extract/state_grid.py`: YAMNet's 0.96 s
windows every 0.48 s, 48 states every 24), and which frames are speech is Silero VAD's call,
the rule of encoders without scores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from brogue.errors import BrogueError
from brogue.extract.decode import blocks
from brogue.extract.engine import EncodedFrames, clip_groups
from brogue.extract.grid import FrameGrid
from brogue.extract.runtime import OPENVINO_RUNTIMES, resolve
from brogue.extract.state_grid import GRID, pool
from brogue.extract.vad import SileroVad

from . import checkpoint
from .features import FrontEnd, log_mel
from .network import Network
from .spec import default_layer, name_of, parse

if TYPE_CHECKING:
    from brogue.extract.engine import EngineSpec

Key = TypeVar("Key")
# Audio handed to the network at once: the clips of one group go out as one inference request
# each, and the group's requests keep both streams busy.
SAMPLES_PER_GROUP = 64 * GRID.sample_rate
# A clip shorter than this many states (40 ms) is padded to it: once an inference request of
# OpenVINO 2026.4's CPU plugin has attended over one state in its first call, its attention
# kernel gives wrong numbers for every longer input after it (tests/test_whisper.py).
MIN_STATES = 2


class WhisperEncoder:
    score_names = None

    def __init__(self, name: str, runtime: str = "auto", precision: str = "fp32",
                 speech: Callable[[np.ndarray, FrameGrid], np.ndarray] | None = None) -> None:
        resolve(runtime, precision, OPENVINO_RUNTIMES)  # refuses bf16 on a CPU without it
        spec = parse(name)
        loaded = checkpoint.load(spec.model)
        weights = loaded.weights
        depth = len(weights.layers)
        layer = default_layer(depth) if spec.layer is None else spec.layer
        if not 0 <= layer <= depth:
            raise BrogueError(f"whisper:{spec.model}@{layer}: the model has layers 0 to {depth}")
        self.name, self.handle, self.fingerprint = name_of(spec.model, layer), loaded.handle, \
            loaded.fingerprint
        self.front_end = FrontEnd(weights.mel_bands)
        self.grid = GRID.frames
        self.speech = speech or SileroVad()
        self.embedding_size = weights.width
        self.params = {"layer": layer, "pool": "mean", "context": "clip"}
        self._window = GRID.model_frames(GRID.window_s, self.front_end.samples_per_state)
        self._hop = GRID.model_frames(GRID.hop_s, self.front_end.samples_per_state)
        self.network = Network(weights, layer, precision)
        self.runtime, self.precision = self.network.runtime, self.network.precision

    def stream(self, clips: Iterable[tuple[Key, np.ndarray]]
               ) -> Iterator[tuple[Key, EncodedFrames]]:  # fmt: skip
        for group in clip_groups(clips, SAMPLES_PER_GROUP):
            keys = [key for key, _ in group]
            yield from zip(keys, self.encode([waveform for _, waveform in group]), strict=True)

    def encode(self, waveforms: Sequence[np.ndarray]) -> list[EncodedFrames]:
        """The frames of each waveform (16 kHz mono float32)."""
        pieces = [self._pieces(waveform) for waveform in waveforms]
        flat = [piece for clip in pieces for piece, _ in clip]
        states = iter(self.network([self.input(piece) for piece in flat]))
        encoded = []
        step = self.front_end.samples_per_state
        for clip in pieces:
            # A piece's own states: those centred inside it, not on the padding after it.
            own = [(next(states)[: max(1, -(-len(piece) // step))], piece, frames)
                   for piece, frames in clip]
            encoded.append(EncodedFrames(
                np.concatenate([pool(state, frames, self._window, self._hop)
                                for state, _, frames in own]),
                np.concatenate([self.speech(piece, self.grid)[:frames]
                                for _, piece, frames in own])))  # fmt: skip
        return encoded

    def input(self, waveform: np.ndarray) -> np.ndarray:
        """The log-mel the network hears for a clip: the clip padded to whole states."""
        step = self.front_end.samples_per_state
        padded = max(MIN_STATES, -(-len(waveform) // step)) * step
        return log_mel(np.pad(waveform, (0, padded - len(waveform))), self.front_end)

    def _pieces(self, waveform: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """(piece, its frames): the whole clip, or the blocks extraction reads a long one in."""
        plan = blocks(len(waveform), self.grid)
        if len(plan) == 1:
            return [(waveform, self.grid.frame_count(len(waveform)))]
        return [(np.pad(waveform[block.start : block.stop],
                        (0, block.stop - block.start - len(waveform[block.start : block.stop]))),
                 block.frames) for block in plan]  # fmt: skip


def from_spec(spec: EngineSpec) -> WhisperEncoder:
    """`spec.encoder`, a name whisper:MODEL[@LAYER], as `spec` asks for it (its loader in
    `extract/encoders.py`, which refuses --batch-size: one clip per inference request)."""
    return WhisperEncoder(spec.encoder, spec.runtime, spec.precision)
