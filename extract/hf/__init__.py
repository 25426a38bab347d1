"""`hf:MODEL[@LAYER]`: one hidden layer of a Hugging Face speech model, pooled onto a frame grid.

`spec` reads the name, `model` loads and fingerprints the checkpoint, `inputs` says how audio
enters each family (wav2vec2/HuBERT/WavLM/XLS-R, Whisper), `network` runs it (torch or
OpenVINO) and `encoder` puts them together behind the Encoder protocol (`HFEncoder`), the
model's 50 Hz states pooled into YAMNet's 0.96 s windows by `brogue.extract.state_grid`. Needs
the `hf` extra.
"""
