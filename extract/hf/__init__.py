"""`hf:MODEL[@LAYER]`: one hidden layer of a Hugging Face speech model, pooled onto a frame grid.

`spec` reads the name, `model` loads and fingerprints the checkpoint, `grid` pools the model's
50 Hz states into 0.96 s windows, `runtime` runs the network (torch or OpenVINO) and `encoder`
puts them together behind the Encoder protocol. Needs the `hf` extra (transformers, torch).
"""
