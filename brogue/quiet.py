"""Start the deep-learning frameworks without their start-up noise.

TensorFlow logs through absl in C++. `TF_CPP_MIN_LOG_LEVEL` silences what it logs once
running (the cuInit error, for instance), but the lines printed while its shared libraries
load (oneDNN, "Could not find cuda drivers", the absl::InitializeLog warning) come before
absl reads any setting. For those there is no switch, so the C-level stderr is redirected
during the import alone, and replayed if the import fails.

The `hf:` and `whisper:` encoders bring torch, transformers and huggingface_hub: their progress
bars (transformers' "Loading weights", downloads), transformers' notices and the warnings the
frameworks raise (torch's tracer, while OpenVINO converts a model) are switched off too.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

_FRAMEWORKS = ("keras", "tensorflow")
# Packages whose own warnings are theirs to fix, not the user's.
_WARNING_MODULES = r"(torch|transformers|huggingface_hub|openvino)(\.|$)"


def quiet_frameworks() -> None:
    """Keras and TensorFlow import silently whenever they first do; later TensorFlow/absl logs
    only show errors. They are not imported here: extraction on the openvino runtime runs
    without them, and TensorFlow's import alone was 0.8 GB."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' bars follow it
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", module=_WARNING_MODULES)
    for name in ("tensorflow", "absl", "jax._src.xla_bridge"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if not any(isinstance(finder, _QuietImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds the frameworks as Python would, and runs their import with stderr captured."""

    def find_spec(self, name, path, target=None):
        if name not in _FRAMEWORKS:
            return None
        sys.meta_path.remove(self)  # so that find_spec below asks the other finders
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        with _stderr_to_file():
            self.loader.exec_module(module)

    def __getattr__(self, name: str):  # resource readers and the like: the real loader's
        return getattr(self.loader, name)


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
