"""How a decode worker process starts: cheaply, and tied to its parent.

This module must not import numpy: `start` runs in the fresh spawned process before the
first task's unpickling imports `decode` and numpy with it, which is what lets it set
numpy's thread count. (A parent whose own main script imports numpy gets no such gain:
spawn re-imports that script first.)
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

# glibc's mallopt parameters, and the sizes a worker uses them with.
_M_TOP_PAD, _M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -2, -1, -3
_WORKER_HEAP_BYTES = 64 << 20


def start(parent: int) -> None:
    """The initializer of every decode worker; `parent` is the extracting process's pid."""
    _one_blas_thread()
    _keep_freed_memory()
    _exit_with_parent(parent)


def _one_blas_thread() -> None:
    """Decoding does no linear algebra, yet numpy's OpenBLAS starts a thread per core at
    import: a third of a worker's start-up CPU (0.30 -> 0.20 CPU-s on 2 cores)."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"


def _keep_freed_memory() -> None:
    """Let glibc reuse a worker's freed arrays instead of returning them to the kernel.

    Every clip allocates a few arrays of hundreds of kB (the file's samples, the resampled
    waveform, its pickle); by default each is a fresh mmap, whose pages fault in one by one.
    That was a third of a worker's CPU time: 576 clips decoded in 2.3 CPU-s, 1.5 with this.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: leave the allocator as it is
        return
    for parameter in (_M_MMAP_THRESHOLD, _M_TOP_PAD):
        mallopt(parameter, _WORKER_HEAP_BYTES)
    mallopt(_M_TRIM_THRESHOLD, 4 * _WORKER_HEAP_BYTES)


def _exit_with_parent(parent: int) -> None:
    """End this worker within a second of its parent's death. A worker whose parent was
    killed (SIGKILL, a crash) otherwise waits forever on its task queue, holding the
    parent's stdout and stderr open."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
