"""One path from audio to its frames: local extraction and Ray's actors go through
`file_pieces`/`encoded_pieces`, and `brogue.inference` (predict, its plot, the server,
`brogue yamnet`) through `whole_files` for files and `decoded_files` for waveforms already
decoded, which are cut into the same blocks.

The path: decode (`decode.py`; a long recording in blocks of the encoder's grid, so memory
holds a few blocks of its audio), the encoder (batched across files as it likes), then each
piece's own frames (`file_pieces`). Extraction writes pieces to their shard as they come, so a
recording of any length is held a few blocks at a time. Predict and the server want a file
whole (`whole_files`): its pieces joined, with the log-mel and the waveform's envelope that
their plots draw.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from brogue.cache import CachedFile

from .corpus import ClipSource
from .decode import DEFAULT_WORKERS, Prepared, prepared_in_order, waveform_pieces
from .engine import EncodedFrames, Encoder
from .grid import SAMPLE_RATE, FrameGrid

# Every encoder's log-mel, where it keeps one for plots, has a row every 10 ms (YAMNet's STFT
# hop): a piece's rows then line up with its frames' times. The waveform's envelope, for plots
# too, has the same rows.
LOG_MEL_HOP_S = 0.010
LOG_MEL_WINDOW_S = 0.025  # each row's STFT window
_ENVELOPE_SAMPLES = round(LOG_MEL_HOP_S * SAMPLE_RATE)


class PieceFrames(NamedTuple):
    """A piece of a file (a short file is one piece) as the path leaves it: `frames` are the
    piece's own, and None when the file was cached or failed."""

    clip: Prepared
    frames: EncodedFrames | None


class FileFrames(NamedTuple):
    """A file as the path leaves it: `frames` and `envelope` are None when it was cached or
    failed. `envelope` [R, 2] is the waveform's least and greatest sample in each 10 ms, so a
    plot draws the file without decoding it again."""

    clip: Prepared
    frames: EncodedFrames | None
    envelope: np.ndarray | None = None


def numbered_sources(paths: Sequence[str | Path]) -> list[ClipSource]:
    """Files that are not a corpus (predict's, the server's) as sources; each carries its
    position among `paths` in `extra["number"]`, which survives the trip through a worker."""
    return [ClipSource(Path(path), "", "", {"number": str(n)}, str(path))
            for n, path in enumerate(paths)]  # fmt: skip


def decoded_files(encoder: Encoder, waveforms: Iterable[tuple[str, np.ndarray]]
                  ) -> Iterator[FileFrames]:  # fmt: skip
    """`whole_files` for waveforms already decoded to 16 kHz mono float32, each named, and
    numbered as `numbered_sources` numbers files: a long one goes in the blocks a file of the
    same samples would (`decode.waveform_pieces`), so both give the same frames."""
    clips = (piece for n, (name, waveform) in enumerate(waveforms)
             for piece in waveform_pieces(ClipSource(Path(name), "", "", {"number": str(n)}, name),
                                          waveform, encoder.grid))  # fmt: skip
    return join_pieces(encoded_pieces(encoder, clips), encoder.grid)


def file_pieces(encoder: Encoder, sources: Sequence[ClipSource], workers: int = DEFAULT_WORKERS,
                cached: Mapping[str, CachedFile] | None = None) -> Iterator[PieceFrames]:
    """Every source's pieces, in order, each with its own frames; cached and failed files (or
    the piece that failed) without.

    `cached` maps a clip's key to its file as cached, which `decode.prepared_in_order` skips.
    Closing the iterator stops the decode workers.
    """
    prepared = prepared_in_order(sources, encoder.grid, workers, cached or {})
    try:
        yield from encoded_pieces(encoder, prepared)
    finally:
        prepared.close()


def whole_files(encoder: Encoder, sources: Sequence[ClipSource], workers: int = DEFAULT_WORKERS,
                cached: Mapping[str, CachedFile] | None = None) -> Iterator[FileFrames]:
    """`file_pieces` joined: every source, in order, with its whole-file frames and envelope."""
    pieces = file_pieces(encoder, sources, workers, cached)
    try:
        yield from join_pieces(pieces, encoder.grid)
    finally:
        pieces.close()


def encoded_pieces(encoder: Encoder, prepared: Iterable[Prepared]) -> Iterator[PieceFrames]:
    """`file_pieces` from clips already prepared (decoded, a long one as its pieces).

    Clips that reach no encoder (cached, failed) come out where they went in: after the
    encoded pieces that went in before them.
    """
    grid = encoder.grid
    # (pieces handed to the encoder before it, clip) for each clip that reaches no encoder
    skipped: collections.deque[tuple[int, Prepared]] = collections.deque()
    handed = 0

    def to_encode() -> Iterator[tuple[Prepared, np.ndarray]]:
        nonlocal handed
        for clip in prepared:
            if clip.waveform is None:
                skipped.append((handed, clip))
            else:
                handed += 1
                yield clip, clip.waveform

    returned = 0
    for clip, frames in encoder.stream(to_encode()):
        while skipped and skipped[0][0] <= returned:
            yield PieceFrames(skipped.popleft()[1], None)
        returned += 1
        yield PieceFrames(clip, own_frames(clip, frames, grid))
    yield from (PieceFrames(clip, None) for _, clip in skipped)


def own_frames(clip: Prepared, frames: EncodedFrames, grid: FrameGrid) -> EncodedFrames:
    """A piece's frames without what belongs to its neighbours: the frames past its share (the
    last block's all-padding patch) and the log-mel rows of the window's overlap with the piece
    before (its frames start on the frame hop)."""
    count = len(frames.embeddings) if clip.frames is None else clip.frames
    log_mel = frames.log_mel
    if log_mel is not None:
        overlap = round((grid.window_s - grid.hop_s) / LOG_MEL_HOP_S)
        rows = round((grid.window_s + (count - 1) * grid.hop_s) / LOG_MEL_HOP_S)
        log_mel = log_mel[overlap if clip.piece else 0 : rows]
    return EncodedFrames(frames.embeddings[:count], frames.speech[:count],
                         None if frames.scores is None else frames.scores[:count], log_mel)


def join_pieces(pieces: Iterable[PieceFrames], grid: FrameGrid) -> Iterator[FileFrames]:
    """Each file, its pieces joined, with its envelope; cached and failed files pass as they
    are. Each piece's envelope is taken from its own samples as it comes, so the file's audio
    is never held whole. A file whose later pieces never came (one failed to decode) is
    dropped when the next file's first piece arrives.
    """
    joined: list[EncodedFrames] = []
    envelopes: list[np.ndarray] = []
    for clip, frames in pieces:
        if frames is None:
            yield FileFrames(clip, None)
            continue
        if clip.piece == 0:
            joined, envelopes, taken = [], [], 0
        # A piece's own samples: up to where the next begins, the last up to the file's end.
        own = (round(clip.seconds * SAMPLE_RATE) - taken if clip.last
               else len(frames.embeddings) * grid.hop_samples)  # fmt: skip
        envelopes.append(envelope(clip.waveform[:own]))
        taken += own
        joined.append(frames)
        if clip.last:
            whole = EncodedFrames(*(None if parts[0] is None else np.concatenate(parts)
                                    for parts in zip(*joined, strict=True)))  # fmt: skip
            yield FileFrames(clip, whole, np.concatenate(envelopes))


def envelope(waveform: np.ndarray) -> np.ndarray:
    """[R, 2]: the least and greatest sample of each 10 ms of `waveform` (the last may be short)."""
    rows = -(-len(waveform) // _ENVELOPE_SAMPLES)
    padded = np.pad(waveform, (0, rows * _ENVELOPE_SAMPLES - len(waveform)), mode="edge")
    windows = padded.reshape(rows, _ENVELOPE_SAMPLES)
    return np.stack([windows.min(axis=1), windows.max(axis=1)], axis=1)
