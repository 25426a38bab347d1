"""The trainer: reads the shard cache that `extract/` writes, through `extract.shards.Cache` only.

    python -m train fit [--cache data/embeddings] [--out data/runs/NAME] [settings...]
    python -m train evaluate RUN_DIR [--cache DIR]
    python -m train.bench

Modules, in the order the data flows: `config` (every setting), `corpus` (the cache as per-clip
arrays), `splits` (who trains, who validates), `weights` (class weights from frame counts),
`stream` (the Keras feed from the shards), `model`, `fit`, `metrics`, `evaluate`, `plots`.
`synthetic` writes small learnable caches for the tests and the benchmark.
"""
