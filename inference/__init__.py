"""Inference: one path from a recording to an answer, for every verb that answers.

    brogue predict RUN_DIR FILE...   (the verb lives with train's; it runs `predict.predict`)
    brogue yamnet FILE...            (`commands.py`: what YAMNet hears, by `predict.encoded`)

Modules:
- `run_folder.py`: the run folder's one home: its file names, run.json read and written, the
  encoders it records (old runs' too), its test score, `RunError`;
- `trained_run.py`: a run loaded (model.keras, its serving head, its classes) and its encoders
  loaded, each refused unless its weights are the run's;
- `pooling.py`: the Keras layers a model.keras may hold (pooling, attention) and the serving
  heads, so a run loads without `train/`;
- `calibration.py`: the calibration map run.json records (fitted by `train.calibration`), the
  layer every serving head ends in, so every answer's probabilities are calibrated;
- `evidence.py`: how sure an answer is on the run's own test evidence, and whether a recording
  is one the run trained or validated on (by content hash), for predict, serve and the page;
- `predict.py`: the one entry, `predict(run, encoders, recordings)`: files or waveforms in,
  one answer per recording out (a `FilePrediction`, or an `Unreadable` saying why), long
  recordings in blocks of the encoder's grid through `brogue.extract.frames`, the speech mask
  the encoder's own rule (`brogue.cache.speech`);
- `commands.py`: the verb brogue yamnet.

Its callers: `brogue predict` (`train.commands`), `brogue serve` (`serve.inference`, whose size
and duration checks are guards in front of it), `brogue yamnet`, `evaluate` (which loads the
run's model here), `export` (which builds its graph from a run loaded here) and export's parity
test, which holds the SavedModel to `predict`'s answers.

Layers: `brogue` <- `cache` <- `extract` <- `inference` <- `train`, `serve`. Inference imports
extract and cache, never `train/`: what loading a run needs of training (the custom layers in
model.keras, the serving heads, the calibration map, the run folder's layout) lives here, and
`train/` imports it from here. The family a run was trained as is a name in run.json; the head
that serves it is chosen by what its model takes, so a new family needs nothing here unless it
brings a new custom layer. The package and `run_folder` import no framework: the verbs refuse a
missing run there, before Keras and TensorFlow take seconds to load.
"""
