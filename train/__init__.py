"""The trainer: reads the shard cache that `extract/` writes, through `extract.shards.Cache` only.

    brogue fit [--cache data/embeddings] [--out data/runs/NAME] [--model FAMILY] [settings...]
    brogue evaluate RUN_DIR [--cache DIR]
    brogue sweep [--cache data/embeddings] [--out data/sweep] [--space FILE] [--jobs N]
    brogue predict RUN_DIR FILE... [--json] [--plot OUT.png]
    brogue export RUN_DIR OUT

Modules, in the order the data flows: `config` (every setting), `corpus` (the cache as per-clip
arrays), `splits` (who trains, validates and tests), `weights` (class weights from the cache's
counts), `stream` and `clips` (Keras feeds of frames and of whole clips from the shards);
`families` (frame-dense in `model` and `frame_dense`, `clip_linear`, `clip_attention`, their
layers in `pooling`, Keras training in `keras_training`), `fit`, `metrics`, `evaluate`, `plots`;
then `sweep` (an Optuna study of `fit` trials over `sweep_space.json`, with `sweep_worker`),
`predict` and `prediction_plot` (new recordings through the run's YAMNet and serving head),
`export` (waveform-to-accent SavedModel).
`dev.synthetic_cache` writes small learnable caches for the tests and the benchmarks.
"""
