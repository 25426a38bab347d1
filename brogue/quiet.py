"""Start the deep-learning frameworks without their start-up noise.

TensorFlow logs through absl in C++. `TF_CPP_MIN_LOG_LEVEL` silences what it logs once
running (the cuInit error, for instance), but the lines printed while its shared libraries
load (oneDNN, "Could not find cuda drivers", the absl::InitializeLog warning) come before
absl reads any setting. For those there is no switch, so the C-level stderr is redirected
during the import alone, and replayed if the import fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator


def quiet_frameworks() -> None:
    """Import Keras and its backend silently; later TensorFlow/absl logs only show errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _stderr_to_file():
        import keras  # noqa: F401  (imports the backend: TensorFlow, JAX or PyTorch)
    for name in ("tensorflow", "absl", "jax._src.xla_bridge"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def _stderr_to_file() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            os.write(2, captured.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
