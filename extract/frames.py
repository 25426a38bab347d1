"""One path from audio to its whole-file frames: local extraction goes through `whole_files`,
Ray's actors through `encoded_files` and `join_pieces`, and `brogue.inference` (predict, its
plot, the server, `brogue yamnet`) through `whole_files` for files and `decoded_files` for
waveforms already decoded, which are cut into the same blocks.

The path: decode (`decode.py`; a long recording in blocks of the encoder's grid, so memory
holds a few blocks of its audio), the encoder (batched across files as it likes), and the
joining of a long file's pieces. A file's frames are held whole once joined: 4 KB per 0.48 s
frame of 1024-d embeddings, about 90 MB for 3 hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from brogue.cache import CachedFile

from .corpus import ClipSource
from .decode import DEFAULT_WORKERS, Prepared, prepared_in_order, waveform_pieces
from .engine import EncodedFrames, Encoder
from .grid import SAMPLE_RATE

# Every encoder's log-mel, where it keeps one for plots, has a row every 10 ms (YAMNet's STFT
# hop): a piece's rows then line up with its frames' times. The waveform's envelope, for plots
# too, has the same rows.
LOG_MEL_HOP_S = 0.010
LOG_MEL_WINDOW_S = 0.025  # each row's STFT window
_ENVELOPE_SAMPLES = round(LOG_MEL_HOP_S * SAMPLE_RATE)


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
    return encoded_files(encoder, clips)


def whole_files(encoder: Encoder, sources: Sequence[ClipSource], workers: int = DEFAULT_WORKERS,
                cached: Mapping[str, CachedFile] | None = None) -> Iterator[FileFrames]:
    """Every source, in order, with its whole-file frames; cached and failed files without.

    `cached` maps a clip's key to its file as cached, which `decode.prepared_in_order` skips.
    Closing the iterator stops the decode workers.
    """
    prepared = prepared_in_order(sources, encoder.grid, workers, cached or {})
    try:
        yield from encoded_files(encoder, prepared)
    finally:
        prepared.close()


def encoded_files(encoder: Encoder, prepared: Iterator[Prepared]) -> Iterator[FileFrames]:
    """`whole_files` from clips already prepared (decoded, a long one as its pieces)."""
    skipped: list[Prepared] = []  # cached and failed clips, passed on in the order they come

    def to_encode() -> Iterator[tuple[Prepared, np.ndarray]]:
        for clip in prepared:
            if clip.waveform is None:
                skipped.append(clip)
            else:
                yield clip, clip.waveform

    for clip, frames, envelope in join_pieces(encoder.stream(to_encode()), encoder):
        yield from (FileFrames(done, None) for done in skipped)
        skipped.clear()
        yield FileFrames(clip, frames, envelope)
    yield from (FileFrames(done, None) for done in skipped)


def join_pieces(computed: Iterator[tuple[Prepared, EncodedFrames]], encoder: Encoder
                ) -> Iterator[tuple[Prepared, EncodedFrames, np.ndarray]]:  # fmt: skip
    """(last piece, the whole file's frames, its envelope) per file, its pieces joined.

    A piece's frames start on the frame hop, so its log-mel repeats the rows of the window's
    overlap with the piece before: those are dropped. Each piece's envelope is taken from its
    own samples as it comes, so the file's audio is never held whole. A file whose later pieces
    never came (one failed to decode) is dropped when the next file's first piece arrives.
    """
    grid = encoder.grid
    overlap = round((grid.window_s - grid.hop_s) / LOG_MEL_HOP_S)
    pieces: list[EncodedFrames] = []
    envelopes: list[np.ndarray] = []
    for clip, frames in computed:
        if clip.piece == 0:
            pieces, envelopes, taken = [], [], 0
        count = len(frames.embeddings) if clip.frames is None else clip.frames
        # A piece's own samples: up to where the next begins, the last up to the file's end.
        own = round(clip.seconds * SAMPLE_RATE) - taken if clip.last else count * grid.hop_samples
        envelopes.append(envelope(clip.waveform[:own]))
        taken += own
        log_mel = frames.log_mel
        if log_mel is not None:
            rows = round((grid.window_s + (count - 1) * grid.hop_s) / LOG_MEL_HOP_S)
            log_mel = log_mel[overlap if clip.piece else 0 : rows]
        pieces.append(EncodedFrames(
            frames.embeddings[:count], frames.speech[:count],
            None if frames.scores is None else frames.scores[:count], log_mel))  # fmt: skip
        if clip.last:
            joined = EncodedFrames(*(None if parts[0] is None else np.concatenate(parts)
                                     for parts in zip(*pieces, strict=True)))  # fmt: skip
            yield clip, joined, np.concatenate(envelopes)


def envelope(waveform: np.ndarray) -> np.ndarray:
    """[R, 2]: the least and greatest sample of each 10 ms of `waveform` (the last may be short)."""
    rows = -(-len(waveform) // _ENVELOPE_SAMPLES)
    padded = np.pad(waveform, (0, rows * _ENVELOPE_SAMPLES - len(waveform)), mode="edge")
    windows = padded.reshape(rows, _ENVELOPE_SAMPLES)
    return np.stack([windows.min(axis=1), windows.max(axis=1)], axis=1)
