"""What a benchmark ran on, printed first so that every number carries it."""

from __future__ import annotations

import os
from pathlib import Path

# The flags that decide OpenVINO's bf16 and int8 speed on x86.
FLAGS = ("amx_tile", "amx_int8", "amx_bf16", "avx512_bf16", "avx512_vnni", "avx_vnni")


def cpu_line() -> str:
    """One line: the CPU's model, its cores, and which of FLAGS it has."""
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() \
        else []
    model = next((line.split(":", 1)[1].strip() for line in lines
                  if line.startswith("model name")), "unknown CPU")
    flags = set(next((line for line in lines if line.startswith("flags")), "").split())
    have = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in FLAGS)
    return f"CPU: {model}, {len(os.sched_getaffinity(0))} cores; {have}"
