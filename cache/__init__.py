"""The offline embedding cache: the one seam between `extract/` (writes it) and `train/` (reads it).

An encoder's frames, sharded into HDF5 files with a manifest; docs/cache.md gives the format.
- `schema`: names, columns, versions; `producer`: the encoder record and the same-producer rule;
- `speech`: the speech mask's rule for YAMNet, the class order with "Not a speech";
- `shard_writer` and `writer`: one shard, and the one writer of a folder (lock, leftovers,
  manifest); `reader`: the trainer's read access and what resuming skips;
- `manifest`, `integrity` (content hashes), `lock`, `verify`.
"""

from .producer import EncoderRecord
from .reader import Cache, CachedFile
from .schema import CacheError, ClipMeta, ClipTable
from .speech import NOT_SPEECH, model_classes
from .writer import CacheWriter, ShardSpec

__all__ = ["NOT_SPEECH", "Cache", "CacheError", "CacheWriter", "CachedFile", "ClipMeta",
           "ClipTable", "EncoderRecord", "ShardSpec", "model_classes"]
