"""The offline embedding cache: the one seam between `extract/` (writes it) and `train/` (reads it).

An encoder's frames, sharded into HDF5 files with a manifest; docs/cache.md gives the format.
The names below are the cache's API; its modules are private to it (an import-linter contract
in pyproject.toml holds every other package to this front door):
- `schema`: names, columns, versions; `producer`: the encoder record and the same-producer rule;
- `speech`: the speech mask's rule for YAMNet, the class order with "Not a speech";
- `shard_writer` and `writer`: one shard, and the one writer of a folder (lock, leftovers,
  manifest); `reader`: the trainer's read access and what resuming skips;
- `manifest`, `integrity` (content hashes), `lock`, `verify` and `commands` (`brogue verify`).
"""

from .commands import COMMANDS
from .integrity import hash_file
from .lock import HOLDER, refuse_if_busy
from .producer import EncoderRecord
from .reader import Cache, CachedFile, stored_clips
from .schema import (
    EMBEDDING_DTYPES,
    MANIFEST,
    TRAINING_COLUMNS,
    CacheError,
    ClipMeta,
    ClipTable,
    complete_shards,
)
from .shard_writer import ShardWriter
from .speech import (
    NOT_SPEECH,
    YAMNET_SPEECH_CLASS,
    model_classes,
    scores_say_speech,
    top_class_is_speech,
)
from .verify import Verdict, verify
from .writer import CacheWriter, ShardSpec, remove_orphans

__all__ = ["COMMANDS", "EMBEDDING_DTYPES", "HOLDER", "MANIFEST", "NOT_SPEECH", "TRAINING_COLUMNS",
           "YAMNET_SPEECH_CLASS", "Cache", "CacheError", "CacheWriter", "CachedFile", "ClipMeta",
           "ClipTable", "EncoderRecord", "ShardSpec", "ShardWriter", "Verdict",
           "complete_shards", "hash_file", "model_classes", "refuse_if_busy", "remove_orphans",
           "scores_say_speech", "stored_clips", "top_class_is_speech", "verify"]
