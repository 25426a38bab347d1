"""brogue: recognise UK and Ireland English accents from a speech encoder's embeddings.

The installed package is one import namespace built from the repository's folders:

- `brogue.extract` (`extract/`) runs an encoder once over a corpus into the cache;
- `brogue.cache` (`cache/`) is the cache: its format, its one writer and its reader;
- `brogue.inference` (`inference/`): one path from a recording to an answer, a run loaded and
  the run folder's layout; it imports extract and cache, never train;
- `brogue.train` (`train/`) reads the cache: fit, evaluate, sweep, and the predict and export
  verbs, which answer through `brogue.inference`;
- `brogue.serve` (`serve/`): a run behind HTTP and a page, through `brogue.inference`;
- `brogue` itself (`brogue/`): the command (`main`), its errors, atomic writes, quiet start-up.

`dev/` (benchmarks, corpus generators, the fault drill) stays in the clone.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("brogue")  # pyproject.toml's, the one place it is written
except PackageNotFoundError:  # run from a folder that was never installed
    __version__ = "unknown"
