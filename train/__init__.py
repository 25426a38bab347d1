"""The trainer: reads the shard cache that `extract/` writes, through `extract.shards.Cache` only.

    brogue fit [--cache data/embeddings] [--out data/runs/NAME] [settings...]
    brogue evaluate RUN_DIR [--cache DIR]
    brogue sweep [--cache data/embeddings] [--out data/sweep] [--space FILE]
    brogue predict RUN_DIR FILE... [--json] [--plot OUT.png]
    brogue export RUN_DIR OUT

Modules, in the order the data flows: `config` (every setting), `corpus` (the cache as per-clip
arrays), `splits` (who trains, who validates), `weights` (class weights from frame counts),
`stream` (the Keras feed from the shards), `model`, `fit`, `metrics`, `evaluate`, `plots`;
then `sweep` (trials of `fit` over `sweep_space.json`), `predict` and `prediction_plot` (new
recordings through the run's YAMNet and head), `export` (waveform-to-accent SavedModel).
`brogue.dev.synthetic_cache` writes small learnable caches for the tests and the benchmarks.
"""
