"""Peak memory of a command and its child processes, and a long recording to measure it on."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from dev.signals import speech_like

_POLL_S = 0.05


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


def extraction_peak(hours: float, handle: str, workers: int) -> str:
    """One line: the peak memory of `brogue extract` (all processes) on one long recording."""
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "corpus"
        corpus.mkdir()
        write_long_recording(corpus / "long.wav", hours)
        command = [sys.executable, "-m", "brogue", "extract", "--corpus", str(corpus), "--out",
                   str(Path(folder) / "cache"), "--yamnet", handle, "--workers", str(workers)]
        peak, seconds, code = peak_rss(command)
    status = "" if code == 0 else f"; FAILED with exit code {code}"
    return (f"memory: extracting one {hours:g} h recording (44.1 kHz 16-bit WAV) peaked at "
            f"{peak / 2**20:.0f} MB RSS, all processes together, in {seconds:.0f} s "
            f"(target <= 1024 MB){status}")
