"""`make bench-serve`: what `brogue serve` sustains on loopback, and what batching gains.

A server (one worker, default limits) runs the run given, or a small run trained here on a numpy
synthetic corpus. Loopback clients send 3 s speech-like WAVs (16 distinct clips, each as the
request's body) with 1, 4 and 16 of them at once, the levels interleaved over rounds so that every
level meets the same noise from the rest of the machine; each level's requests/s and p50/p95
latency are the medians over the rounds. The ratio of 16 clients' requests/s to one client's (the
same requests one at a time) is the gain of batching across requests: target >= 2 on 2 cores. The
server's CPU time per request is read beside it: on a machine that others share, it shows what
batching saves even when the server's share of the cores, and so its rate, is cut. Then bursts of
64 concurrent uploads of the largest body the server takes (float WAVs just under the body limit):
each gets 200 or 503 with Retry-After, and the server's RSS (all its processes) is read before, at
its peak and after each burst: a second burst that peaks where the first did shows memory bounded.
Errors (anything else, on any request) must be 0. The last line is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
import soxr

from brogue.serve.settings import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS
from dev.memory import tree_rss_bytes
from dev.signals import speech_like
from dev.synthetic_corpus import write_corpus

HOST = "127.0.0.1"  # loopback only
LEVELS = (1, 4, 16)
TARGET_GAIN = 2.0
REQUEST_TIMEOUT_S = 120  # a request slower than this counts as an error
START_TIMEOUT_S = 300  # TensorFlow and the model loading on a busy machine
BURST_RATE = 44_100  # the burst's uploads: stereo float32 WAV, the most bytes per second
_RSS_POLL_S = 0.05


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def wav(waveform: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    out = io.BytesIO()
    soundfile.write(out, waveform, rate, subtype=subtype, format="WAV")
    return out.getvalue()


def brogue(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "brogue", *args], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def small_run(folder: Path) -> Path:
    """A frame-dense run on 24 numpy clips: what the bench measures is the server, not it."""
    write_corpus(folder / "corpus", 2, 3, voice="numpy")
    brogue("extract", "--corpus", str(folder / "corpus"), "--out", str(folder / "cache"))
    brogue("fit", "--cache", str(folder / "cache"), "--out", str(folder / "run"), "--split",
           "random", "--epochs", "5", "--no-tensorboard")  # fmt: skip
    return folder / "run"


@contextlib.contextmanager
def serving(run: Path) -> Iterator[tuple[int, int]]:
    """(port, pid) of `brogue serve run` on a free loopback port, stopped afterwards."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "brogue", "serve", str(run), "--port",
                               str(port)], stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"brogue serve {run} did not start")
            time.sleep(0.2)
        yield port, server.pid
    finally:
        server.terminate()
        server.wait(30)


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, bool]:
    """(status, whether it says Retry-After) of one raw upload; status 0 if it failed."""
    try:
        connection.request("POST", "/v1/predict", body, {"Content-Type": "audio/wav"})
        answer = connection.getresponse()
        answer.read()
    except OSError:  # refused, reset, timed out: an error
        connection.close()
        return 0, False
    return answer.status, answer.getheader("Retry-After") is not None


def load(port: int, bodies: Sequence[bytes], clients: int, requests: int
         ) -> tuple[float, list[float], list[int]]:
    """(requests/s, latencies in s, statuses) of `requests` uploads by `clients` at once.

    Each client is a thread with its own keep-alive connection (http.client: 0.3 ms of CPU
    per request; httpx's threads took 10 ms, the server's cores' time).
    """
    local = threading.local()

    def one(n: int) -> tuple[float, int]:
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
        started = time.perf_counter()
        status, _ = post(local.connection, bodies[n % len(bodies)])
        return time.perf_counter() - started, status

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        done = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    return requests / wall, [seconds for seconds, _ in done], [status for _, status in done]


def burst(port: int, pid: int, body: bytes, count: int) -> dict:
    """`count` concurrent uploads of `body`; their statuses and the server's RSS."""
    peak, stop = [tree_rss_bytes(pid)], threading.Event()

    def watch() -> None:
        while not stop.wait(_RSS_POLL_S):
            peak.append(tree_rss_bytes(pid))

    def one(_: int) -> tuple[int, bool]:
        return post(http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S), body)

    before = tree_rss_bytes(pid)
    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(one, range(count)))
    stop.set()
    watcher.join()
    statuses = [status for status, _ in answers]
    return {"ok": statuses.count(200), "busy_503": statuses.count(503),
            "errors": sum(1 for status, retry in answers
                          if status != 200 and not (status == 503 and retry)),
            "rss_mb": {"before": round(before / 2**20), "peak": round(max(peak) / 2**20),
                       "after": round(tree_rss_bytes(pid) / 2**20)}}  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` has used, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], share: float) -> float:
    return float(np.percentile(values, share))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-serve", description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run folder to serve (default: a small one "
                                                 "trained here on numpy speech)")
    parser.add_argument("--requests", type=int, default=32, help="per level and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clip-seconds", type=float, default=3.0)
    parser.add_argument("--bursts", type=int, default=2, help="bursts of 64 largest uploads")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    print(f"CPU: {cpu_model()}, {cores} cores available; load average "
          f"{os.getloadavg()[0]:.1f} at the start")
    rng = np.random.default_rng(0)
    bodies = [wav(speech_like(args.clip_seconds, rng), 16000) for _ in range(16)]
    # The largest upload the defaults take: the most seconds of stereo float32 under the body
    # limit, within the duration limit.
    burst_seconds = min(DEFAULT_MAX_SECONDS, (DEFAULT_MAX_BYTES - 1024) // (BURST_RATE * 8))
    voice = soxr.resample(speech_like(burst_seconds, rng), 16000, BURST_RATE)
    big = wav(np.stack([voice, voice], axis=1).astype(np.float32), BURST_RATE, "FLOAT")
    with tempfile.TemporaryDirectory() as folder:
        run = args.run or small_run(Path(folder))
        with serving(run) as (port, pid):
            rss_start = tree_rss_bytes(pid)
            for level in LEVELS:  # warm-up: the shapes each level meets get traced
                load(port, bodies, level, level)
            rates: dict[int, list[float]] = {level: [] for level in LEVELS}
            cpu: dict[int, list[float]] = {level: [] for level in LEVELS}
            latencies: dict[int, list[float]] = {level: [] for level in LEVELS}
            errors = 0
            for _ in range(args.rounds):
                for level in LEVELS:
                    used = cpu_seconds(pid)
                    rate, seconds, statuses = load(port, bodies, level, args.requests)
                    rates[level].append(rate)
                    cpu[level].append((cpu_seconds(pid) - used) / args.requests)
                    latencies[level] += seconds
                    errors += sum(status != 200 for status in statuses)
            rss_after_load = tree_rss_bytes(pid)
            bursts = [burst(port, pid, big, 64) for _ in range(args.bursts)]
            rss_end = tree_rss_bytes(pid)
    table = {level: {"req_per_s": round(statistics.median(rates[level]), 2),
                     "p50_ms": round(percentile(latencies[level], 50) * 1000),
                     "p95_ms": round(percentile(latencies[level], 95) * 1000),
                     "server_cpu_ms_per_request": round(statistics.median(cpu[level]) * 1000)}
             for level in LEVELS}  # fmt: skip
    gain = table[16]["req_per_s"] / table[1]["req_per_s"]
    print(f"{args.rounds} rounds x {args.requests} requests of {args.clip_seconds:g} s per level:")
    print("clients  req/s   p50 ms  p95 ms  server CPU ms/request")
    for level, row in table.items():
        print(f"{level:7d}  {row['req_per_s']:6.2f}  {row['p50_ms']:6d}  {row['p95_ms']:6d}  "
              f"{row['server_cpu_ms_per_request']:6d}")
    cpu_gain = table[1]["server_cpu_ms_per_request"] / table[16]["server_cpu_ms_per_request"]
    print(f"16 clients / 1 client: {gain:.2f}x requests/s (target >= {TARGET_GAIN:g}), "
          f"{cpu_gain:.2f}x less server CPU per request; errors {errors}; load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    for n, result in enumerate(bursts, 1):
        rss = result["rss_mb"]
        print(f"burst {n}: 64 x {len(big) / 1e6:.1f} MB ({burst_seconds} s) uploads: "
              f"{result['ok']} answered, {result['busy_503']} 503 + Retry-After, "
              f"{result['errors']} errors; RSS {rss['before']} -> peak {rss['peak']} -> "
              f"{rss['after']} MB")
    errors += sum(result["errors"] for result in bursts)
    mb = 2**20
    print(f"server RSS: {rss_start / mb:.0f} MB started, {rss_after_load / mb:.0f} MB after the "
          f"load levels, {rss_end / mb:.0f} MB at the end")
    result = {
        "bench": "serve", "cpu": cpu_model(), "cores": cores, "clip_seconds": args.clip_seconds,
        "levels": {str(level): row for level, row in table.items()},
        "gain_16_over_1": round(gain, 3), "cpu_gain_16_over_1": round(cpu_gain, 3),
        "load_average": round(os.getloadavg()[0], 1), "errors": errors, "bursts": bursts,
        "rss_mb": {"before": round(rss_start / mb), "after_load": round(rss_after_load / mb),
                   "after": round(rss_end / mb)},
    }  # fmt: skip
    print("RESULT " + json.dumps(result))
    return 0 if errors == 0 else 1
