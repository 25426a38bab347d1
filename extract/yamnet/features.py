"""The keras-free sizes of YAMNet's front-end calls. Its frame count and padded length are its
grid's (`Params.grid`, `extract/grid.py`), which the tests hold to `frontend.patch_count`."""

from __future__ import annotations

from brogue.extract.grid import SAMPLE_RATE

# Clips per call of the native engine's front end: 16 clips of ~6 s ran it 2.4x faster than one
# call per clip: a call costs ~1.2 ms by itself, and bigger ones keep both cores busier. Here,
# not in the engine, because the decode workers keep two calls' clips coming.
CLIPS_PER_FRONT_END_CALL = 16
# ... and at most this much audio per call, which bounds the call's intermediates (frames,
# spectra). Extracting a 1 h recording (16 s blocks) peaked at 1,318 MB for all processes with
# 16 blocks per call, 1,135 MB at 96 s, 1,091 MB at 48 s; TensorFlow's import alone is 832 MB
# of it. Smaller calls cost speed: the front end ran at 3,400-4,200 audio-s/s in 96 s calls
# against 2,700-3,100 in 48 s ones.
SAMPLES_PER_FRONT_END_CALL = 96 * SAMPLE_RATE
