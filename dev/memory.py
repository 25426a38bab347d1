"""`make bench-memory`: the peak memory of `brogue extract`, all processes together, on one long
recording, and the long recording to measure it on.

For each encoder asked for (`--encoder`, default yamnet) it extracts a 3-hour and a 6-hour
44.1 kHz 16-bit WAV (`--hours`) and prints one line per run, then the longest file's peak over
the shortest's: extraction holds a few blocks of a recording at a time, whatever its length
(targets: <= 600 MB, and within 15 % from 3 h to 6 h). A 1-minute recording goes first, so that
weights imported or converted on a cold cache are not in the long runs' peaks. The last line is
`RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from dev.machine import cpu_line
from dev.signals import speech_like

_POLL_S = 0.05
TARGET_MB = 600
BOUND = 1.15  # the longest recording's peak over the shortest's
WARM_UP_HOURS = 1 / 60  # write_long_recording writes whole minutes


def write_long_recording(path: Path, hours: float, seed: int = 0) -> Path:
    """A 44.1 kHz 16-bit mono WAV of `hours` of speech-like audio, written a minute at a time
    (ten different minutes, repeated), so writing it holds one minute in memory."""
    rng = np.random.default_rng(seed)
    minutes = [soxr.resample(speech_like(60.0, rng), 16000, 44100) for _ in range(10)]
    with sf.SoundFile(path, "w", 44100, 1, "PCM_16") as out:
        for minute in range(round(hours * 60)):
            out.write(minutes[minute % len(minutes)])
    return path


def tree_rss_bytes(root: int) -> int:
    """Resident memory of process `root` and all its descendants, from /proc."""
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:  # it ended between two reads
            continue
        total += int(status.split("VmRSS:")[1].split()[0]) * 1024 if "VmRSS:" in status else 0
        pending += [int(child) for child in children]
    return total


def peak_rss(command: Sequence[str]) -> tuple[int, float, int]:
    """Run `command`; return the peak summed RSS of its process tree (bytes, sampled every
    50 ms), its wall time in seconds and its exit code."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_bytes(process.pid))
        time.sleep(_POLL_S)
    return peak, time.perf_counter() - start, process.returncode


def extraction_run(hours: float, handle: str | None, workers: int,
                   encoder: str = "yamnet") -> tuple[int, float, int]:  # fmt: skip
    """`peak_rss` of `brogue extract --encoder encoder` on one recording of `hours`; `handle`
    is YAMNet's."""
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "corpus"
        corpus.mkdir()
        write_long_recording(corpus / "long.wav", hours)
        weights = ["--yamnet", handle] if encoder == "yamnet" and handle else []
        return peak_rss([sys.executable, "-m", "brogue", "extract", "--corpus", str(corpus),
                         "--out", str(Path(folder) / "cache"), "--encoder", encoder, *weights,
                         "--workers", str(workers)])  # fmt: skip


def _line(encoder: str, hours: float, peak: int, seconds: float, code: int) -> str:
    status = "" if code == 0 else f"; FAILED with exit code {code}"
    length = f"{hours:g} h" if hours >= 0.1 else f"{hours * 3600:.0f} s"
    return (f"memory: {encoder} extracting one {length} recording (44.1 kHz 16-bit WAV) "
            f"peaked at {peak / 2**20:.0f} MB RSS, all processes together, in {seconds:.0f} s "
            f"(target <= {TARGET_MB} MB){status}")


def extraction_peak(hours: float, handle: str | None, workers: int,
                    encoder: str = "yamnet") -> str:  # fmt: skip
    """One line: the peak memory of `brogue extract` (all processes) on one long recording."""
    return _line(encoder, hours, *extraction_run(hours, handle, workers, encoder))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", action="append",
                        help="yamnet, ge2e or hf:MODEL (repeat for several; default yamnet)")
    parser.add_argument("--yamnet", help="handle (default: $BROGUE_YAMNET, else TF Hub)")
    parser.add_argument("--hours", type=float, nargs="+", default=[3.0, 6.0])
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    print(cpu_line(), flush=True)
    from brogue.extract.yamnet.weights import resolve_handle

    handle = resolve_handle(args.yamnet)
    peaks: dict[str, dict[str, int]] = {}
    for encoder in args.encoder or ["yamnet"]:
        peaks[encoder] = {}
        # A cold cache imports and converts the weights on the first run (YAMNet's import loads
        # TensorFlow); a short run first keeps that out of the long recordings' peaks.
        peak, seconds, code = extraction_run(WARM_UP_HOURS, handle, args.workers, encoder)
        print(_line(encoder, WARM_UP_HOURS, peak, seconds, code) + " [warm-up]", flush=True)
        for hours in args.hours:
            peak, seconds, code = extraction_run(hours, handle, args.workers, encoder)
            print(_line(encoder, hours, peak, seconds, code), flush=True)
            peaks[encoder][f"{hours:g}h"] = round(peak / 2**20)
        longest, shortest = (peaks[encoder][f"{hours:g}h"] for hours in (max(args.hours),
                                                                          min(args.hours)))
        print(f"memory: {encoder} {max(args.hours):g} h over {min(args.hours):g} h peak "
              f"{longest / shortest:.3f} (target <= {BOUND})")
    print("RESULT " + json.dumps({"bench": "memory", "peak_mb": peaks, "cpu": cpu_line()}))
    return 0
