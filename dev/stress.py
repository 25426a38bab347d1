"""`make stress` (`python -m dev stress`): a fault drill for the shard cache and the downloader.

Not a unit test: it runs the real `brogue extract` in child processes and hurts them.
1. SIGKILL trials: each starts an extraction into a fresh cache, kills it at a random moment
   of its extraction (seeded), resumes it, and compares the result with an uninterrupted run:
   shards published before the kill must survive byte for byte, no clip may be stored twice
   or be missing, and no file may be corrupt (`brogue verify` finds nothing; every clip's
   frames equal the uninterrupted run's to 1e-5).
2. Two writers at once on one cache: one must run, the other be refused at once.
3. A full disk mid-shard (RLIMIT_FSIZE, with SIGXFSZ ignored, so writes fail with EFBIG):
   a one-line error, no corrupt shard, and a resume once there is room again.
4. A download cut mid-file while the file changes on the server: the resume (If-Range) must
   fetch the new file, not splice the old one's head onto the new one's tail.
It prints one line per part and exits 1 unless every count is 0.
"""

from __future__ import annotations

import hashlib
import json
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from brogue.cache import HOLDER, Cache, complete_shards, stored_clips, verify
from brogue.extract.download import DownloadError, download
from dev.http_server import serve
from dev.signals import speech_like

SHARD_FRAMES = 24  # small shards: many publishes for a kill to land on
FRAME_TOLERANCE = 1e-5


def write_corpus(folder: Path, seed: int) -> Path:
    """30 speech-like clips of 1-8 s and one 70 s recording, which is read in pieces."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for number in range(30):
        sf.write(folder / f"clip{number:02d}.wav", speech_like(rng.uniform(1, 8), rng), 16000)
    sf.write(folder / "long.wav", speech_like(70.0, rng), 16000)
    return folder


def extract_command(corpus: Path, out: Path, handle: str) -> list[str]:
    return [sys.executable, "-m", "brogue", "extract", "--corpus", str(corpus), "--out", str(out),
            "--yamnet", handle, "--shard-frames", str(SHARD_FRAMES)]  # fmt: skip


def run_extract(command: Sequence[str], **options) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, **options)


def frames_by_clip(directory: Path) -> dict[str, np.ndarray]:
    """Each clip's embeddings, by path, as a reader sees them."""
    with Cache(directory) as cache:
        clips = cache.clips()
        return {path: cache.clip_frames(int(shard), int(row))["embeddings"]
                for path, shard, row in zip(clips["path"], clips["shard"], clips["row"],
                                            strict=True)}  # fmt: skip


def stored_rows(directory: Path) -> list[tuple[str, str]]:
    """Every (path, content hash) row of every finished shard, stale ones included."""
    return [row for path in complete_shards(directory) for row in stored_clips(path)]


def digests(directory: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in complete_shards(directory)}  # fmt: skip


def compare(directory: Path, reference: dict[str, np.ndarray]) -> dict[str, int]:
    """Clips duplicated or missing, and corrupt files, against the uninterrupted run."""
    rows = stored_rows(directory)
    latest = {path: digest for path, digest in rows}  # the live row of each path
    verdict = verify(directory)
    found = frames_by_clip(directory) if not verdict.problems else {}
    wrong = [path for path, frames in found.items()
             if path not in reference or frames.shape != reference[path].shape
             or not np.allclose(frames, reference[path], atol=FRAME_TOLERANCE)]  # fmt: skip
    return {
        "duplicated": len(rows) - len(set(rows)),
        "missing": len(set(reference) - set(latest)),
        "corrupt": len(verdict.problems) + len(wrong),
    }


def wait_for_writer(out: Path, process: subprocess.Popen) -> bool:
    """Wait until `process` holds the cache's lock (it wrote its holder line)."""
    while process.poll() is None:
        try:
            if json.loads((out / HOLDER).read_text())["pid"] == process.pid:
                return True
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)
    return False


def timed_run(command: Sequence[str], out: Path) -> tuple[int, float]:
    """Run an extraction; return its exit code and its seconds from taking the lock to the end."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_writer(out, process)
    started = time.perf_counter()
    return process.wait(), time.perf_counter() - started


def kill_trials(corpus: Path, work: Path, handle: str, reference: dict[str, np.ndarray],
                span: float, trials: int, seed: int) -> tuple[str, int]:
    rng = random.Random(seed)
    totals = {"lost": 0, "duplicated": 0, "missing": 0, "corrupt": 0, "exit": 0}
    published = interrupted = 0
    for trial in range(trials):
        out = work / f"trial{trial:02d}"
        command = extract_command(corpus, out, handle)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_for_writer(out, process):
            time.sleep(rng.uniform(0, span))
        interrupted += process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait()
        before = digests(out)
        published += len(before)
        resumed = run_extract(command)
        totals["exit"] += resumed.returncode != 0
        after = digests(out)
        totals["lost"] += sum(after.get(name) != digest for name, digest in before.items())
        for name, count in compare(out, reference).items():
            totals[name] += count
        shutil.rmtree(out)
    return (f"SIGKILL: trials {trials} ({interrupted} killed mid-run), shards lost "
            f"{totals['lost']} (of {published} published before a kill), clips duplicated "
            f"{totals['duplicated']}, clips missing {totals['missing']}, corrupt files "
            f"{totals['corrupt']}, resumes failed "
            f"{totals['exit']}"), sum(totals.values())


def two_writers(corpus: Path, work: Path, handle: str, reference: dict[str, np.ndarray]
                ) -> tuple[str, int]:
    out = work / "two-writers"
    command = extract_command(corpus, out, handle)
    first, second = (subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for _ in range(2))  # fmt: skip
    results = [(process.wait(), process.communicate()[1]) for process in (first, second)]
    codes = sorted(code for code, _ in results)
    refusals = [err.strip().splitlines()[-1] for code, err in results if code == 1]
    counts = compare(out, reference)
    bad = (codes != [0, 1]) + sum(counts.values())
    refusal = refusals[0] if refusals else "no refusal"
    return (f"two writers at once: exit codes {codes}; {refusal!r}; clips duplicated "
            f"{counts['duplicated']}, missing {counts['missing']}, corrupt files "
            f"{counts['corrupt']}"), bad


def disk_full(corpus: Path, work: Path, handle: str, reference: dict[str, np.ndarray]
              ) -> tuple[str, int]:
    out = work / "disk-full"
    limit = 768 << 10  # a shard of 24 frames takes ~0.4 MB with its room; the long clip ~1.2 MB

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death

    command = extract_command(corpus, out, handle)
    full = run_extract(command, preexec_fn=small_disk)
    lines = full.stderr.strip().splitlines()
    error = lines[-1] if lines else ""
    verdict = verify(out)
    corrupt = sum("orphan" not in problem for problem in verdict.problems)
    orphans = len(verdict.problems) - corrupt
    resumed = run_extract(command)
    counts = compare(out, reference)
    bad = (full.returncode != 1) + (not error.startswith("error: ")) + corrupt + orphans + (
        resumed.returncode != 0) + sum(counts.values())
    return (f"disk full (files capped at {limit >> 10} kB): exit {full.returncode}, {error!r}; "
            f"corrupt shards {corrupt}, orphan temporaries {orphans}; after room came back: "
            f"exit {resumed.returncode}, clips duplicated {counts['duplicated']}, missing "
            f"{counts['missing']}, corrupt files {counts['corrupt']}"), bad


def cut_download(work: Path) -> tuple[str, int]:
    served, dest = work / "served", work / "downloads" / "corpus.zip"
    served.mkdir()
    rng = np.random.default_rng(0)
    old, new = (rng.integers(0, 256, 3 << 20, dtype=np.uint8).tobytes() for _ in range(2))
    (served / "corpus.zip").write_bytes(old)
    with serve(served) as server:
        server.faults.cut_after = 1 << 20
        try:
            download(server.url + "corpus.zip", dest, progress=False)
        except DownloadError:
            pass
        (served / "corpus.zip").write_bytes(new)  # the server's file changes meanwhile
        download(server.url + "corpus.zip", dest, progress=False)
        resumed = server.requests[-1]
    spliced = dest.read_bytes() != new
    leftovers = [path.name for path in dest.parent.iterdir() if path != dest]
    bad = spliced + len(leftovers) + (resumed.if_range is None)
    return (f"download cut at 1 MB of 3 MB, file changed on the server: resumed with "
            f"If-Range {resumed.if_range}, answer the new file: spliced {int(spliced)}, "
            f"leftover files {len(leftovers)}"), bad


def drill(handle: str, trials: int, seed: int) -> int:
    """Run the drill with YAMNet `handle`; returns the exit code (1 unless every count is 0)."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        corpus = write_corpus(work / "corpus", seed)
        code, span = timed_run(extract_command(corpus, work / "reference", handle),
                               work / "reference")  # fmt: skip
        if code != 0:
            print(f"the uninterrupted run failed with exit code {code}")
            return 1
        # The kills land anywhere between taking the lock and the end of a run.
        reference = frames_by_clip(work / "reference")
        frames = sum(len(frames) for frames in reference.values())
        print(f"stress: seed {seed}; {len(reference)} clips, {frames} frames, shards of "
              f"{SHARD_FRAMES} frames; an uninterrupted run holds the lock for {span:.1f} s")
        bad = 0
        for part in (
            lambda: kill_trials(corpus, work, handle, reference, span, trials, seed),
            lambda: two_writers(corpus, work, handle, reference),
            lambda: disk_full(corpus, work, handle, reference),
            lambda: cut_download(work),
        ):
            line, count = part()
            print(f"  {line}", flush=True)
            bad += count
    print("verdict: every count is 0" if bad == 0 else f"verdict: {bad} problems")
    return 0 if bad == 0 else 1

