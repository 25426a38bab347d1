"""Measure HDF5 layouts for the shard cache: `make bench-shards`.

The trainer streams every shard once per epoch and per sweep trial, so read speed
decides the layout; file size and write time are reported beside it. Each layout
is written with the same synthetic shard (post-ReLU-like embeddings with ~40 %
zeros, sigmoid-like scores), then read as the trainer does: the whole shard, and
random 256-row blocks. "warm" reads come from the page cache (epoch two onward on
a machine whose RAM holds the ~1.5 GB cache); "cold" reads drop the file's pages
first with posix_fadvise, like a first epoch. Files go to the system temporary
folder; set TMPDIR to measure another disk.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from brogue.cache import TRAINING_COLUMNS
from brogue.extract.yamnet.params import PARAMS

BLOCK_ROWS = 256
BLOCKS = 400
FRAMES_PER_CLIP = 13  # OpenSLR 83 clips average 6.3 s, hop 0.48 s
REPEATS = 3  # warm timings keep the best of three
COMPRESSIONS = {
    "none": {},
    "lzf": {"compression": "lzf"},
    "gzip-1+shuffle": {"compression": "gzip", "compression_opts": 1, "shuffle": True},
}
# (rows per chunk or None for contiguous, compression); HDF5 compresses only chunked data.
LAYOUTS = [(None, "none")] + [(rows, name) for rows in (64, 256, 1024) for name in COMPRESSIONS]


def synthetic_shard(frames: int, seed: int) -> dict[str, np.ndarray]:
    """Arrays shaped like one shard; normal(0.25, 1) clipped at 0 is zero 40 % of the time."""
    rng = np.random.default_rng(seed)
    embeddings = np.maximum(0, rng.normal(0.25, 1.0, (frames, PARAMS.embedding_size)))
    scores = 1 / (1 + np.exp(-rng.normal(-6.0, 2.5, (frames, PARAMS.num_classes))))
    return {
        "embeddings": embeddings.astype(np.float32),
        "scores": scores.astype(np.float32),
        "speech": scores.argmax(axis=1) == 0,
        "clip_index": (np.arange(frames) // FRAMES_PER_CLIP).astype(np.int32),
    }


def write(path: Path, arrays: dict[str, np.ndarray], rows: int | None, compression: str) -> None:
    with h5py.File(path, "w") as file:
        for name, array in arrays.items():
            chunked = array.ndim == 2 and rows is not None
            layout = (
                {"chunks": (rows, array.shape[1])} | COMPRESSIONS[compression] if chunked else {}
            )
            file.create_dataset(name, data=array, **layout)
    with open(path, "rb+") as raw:
        os.fsync(raw.fileno())


def drop_page_cache(path: Path) -> None:
    with open(path, "rb") as raw:
        os.posix_fadvise(raw.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def read_whole(path: Path) -> float:
    start = time.perf_counter()
    with h5py.File(path, "r") as file:
        for name in TRAINING_COLUMNS:
            file[name][()]
    return time.perf_counter() - start


def read_blocks(path: Path, starts: np.ndarray) -> float:
    with h5py.File(path, "r") as file:
        datasets = [file[name] for name in TRAINING_COLUMNS]
        start = time.perf_counter()
        for row in starts:
            for dataset in datasets:
                dataset[row : row + BLOCK_ROWS]
        return time.perf_counter() - start


def measure(folder: Path, arrays: dict[str, np.ndarray], layout: tuple, seed: int) -> list:
    """[layout, MB, write s, whole cold, whole warm, blocks cold, blocks warm] (kframes/s)."""
    path = folder / "shard.h5"
    frames = len(arrays["clip_index"])
    start = time.perf_counter()
    write(path, arrays, *layout)
    written = time.perf_counter() - start
    starts = np.random.default_rng(seed).integers(0, frames - BLOCK_ROWS, BLOCKS)
    drop_page_cache(path)
    cold = read_whole(path)
    warm = min(read_whole(path) for _ in range(REPEATS))
    drop_page_cache(path)
    cold_blocks = read_blocks(path, starts)
    warm_blocks = min(read_blocks(path, starts) for _ in range(REPEATS))
    rows, compression = layout
    result = [
        f"{'contiguous' if rows is None else f'chunk {rows}'} / {compression}",
        path.stat().st_size / 1e6,
        written,
        frames / cold / 1e3,
        frames / warm / 1e3,
        len(starts) * BLOCK_ROWS / cold_blocks / 1e3,
        len(starts) * BLOCK_ROWS / warm_blocks / 1e3,
    ]
    path.unlink()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-shards",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    arrays = synthetic_shard(args.frames, args.seed)
    zeros = (arrays["embeddings"] == 0).mean()
    print(f"{args.frames} frames, embeddings {zeros:.0%} zeros; kfr/s = thousand frames/s")
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(Path(folder), arrays, layout, args.seed) for layout in LAYOUTS]
    print(f"{'layout':28} {'MB':>6} {'write s':>8}  whole cold/warm  blocks cold/warm")
    for name, size, written, *speeds in rows:
        print(f"{name:28} {size:6.0f} {written:8.2f}  " + " ".join(f"{v:7.0f}" for v in speeds))
    return 0
