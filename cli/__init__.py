"""brogue: recognise UK and Ireland English accents from YAMNet embeddings.

The installed package is one import namespace built from the repository's folders:

- `brogue.extract` (the `extract/` folder) runs YAMNet once over a corpus into the shard cache;
- `brogue.train` (the `train/` folder) reads that cache: fit, evaluate, sweep, predict, export;
- `brogue.main`, `brogue.errors`, `brogue.quiet` (this `cli/` folder): the `brogue` command;
- `brogue.dev` (the `dev/` folder): benchmarks and corpus generators, for development only.
"""

__version__ = "0.2.0"
