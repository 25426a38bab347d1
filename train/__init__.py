"""The trainer: reads the shard cache that `extract/` writes, through `brogue.cache` only.

    brogue fit [--cache data/embeddings] [--out data/runs/NAME] [--model FAMILY] [settings...]
    brogue evaluate RUN_DIR [--cache DIR]
    brogue sweep [--cache data/embeddings] [--out data/sweep] [--space FILE] [--jobs N]
    brogue predict RUN_DIR FILE... [--json] [--plot OUT.png]
    brogue export RUN_DIR OUT

Modules, in the order the data flows: `config` (every setting), `dataset` (the cache as
per-clip arrays), `fusion` (several caches of the same clips as one corpus), `splits` (who
trains, validates and tests), `class_weights` (class weights from the cache's counts), `stream`
and `clips` (Keras feeds of frames and of whole clips from the shards); `families` (the table
of `frame_dense`, `clip_linear` and `clip_attention`, with Keras training in
`keras_training`), `fit`, `calibration` (the map fitted on the valid clips, and how
calibrated probabilities are), `metrics`, `evaluate`, `plots`; then `sweep` (an Optuna study of
`fit` trials over `sweep_space.json`, with `sweep_worker`), `prediction_plot` (the figure of a
prediction), `export` (waveform-to-accent SavedModel) and `commands` (the verbs). Prediction
itself, the run folder's layout, the pooling layers a model.keras holds, the calibration map
as it is applied and the evidence behind "how sure" live in
`brogue.inference`, which this package imports and which never imports it.
`dev.synthetic_cache` writes small learnable caches for the tests and the benchmarks.
"""
