"""What a benchmark ran on, printed first by every benchmark: the CPU's model and the flags that
decide brogue's fast paths (AMX, AVX512-BF16, VNNI), and the machine's load."""

from __future__ import annotations

import os
from pathlib import Path

FLAGS = ("amx_tile", "amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx_vnni")


def cpu() -> dict[str, object]:
    """{"model", "cores", "flags" (those of FLAGS present), "load_1min"}."""
    model, flags = "unknown", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and model == "unknown":
            model = line.split(":", 1)[1].strip()
        elif line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
    return {"model": model, "cores": os.cpu_count(),
            "flags": [flag for flag in FLAGS if flag in flags],
            "load_1min": round(os.getloadavg()[0], 2)}  # fmt: skip


def cpu_line() -> str:
    """One line: the CPU's model, its cores, which of FLAGS it has, and the load."""
    found = cpu()
    flags = ", ".join(found["flags"]) or "none of " + ", ".join(FLAGS)
    return (f"CPU: {found['model']}, {found['cores']} cores; {flags}; "
            f"load {found['load_1min']}")
