"""The trainer: reads the shard cache that `extract/` writes, through `extract.shards.Cache` only.

    python -m train fit [--cache data/embeddings] [--out data/runs/NAME] [settings...]
    python -m train evaluate RUN_DIR [--cache DIR]
    python -m train sweep [--cache data/embeddings] [--out data/sweep] [--space FILE]
    python -m train predict RUN_DIR FILE... [--json] [--plot OUT.png]
    python -m train export RUN_DIR OUT
    python -m train.bench / python -m train.bench_sweep

Modules, in the order the data flows: `config` (every setting), `corpus` (the cache as per-clip
arrays), `splits` (who trains, who validates), `weights` (class weights from frame counts),
`stream` (the Keras feed from the shards), `model`, `fit`, `metrics`, `evaluate`, `plots`;
then `sweep` (trials of `fit` over `sweep_space.json`), `predict` and `prediction_plot` (new
recordings through the run's YAMNet and head), `export` (waveform-to-accent SavedModel).
`synthetic` writes small learnable caches for the tests and the benchmarks.
"""
