"""Resemblyzer's GE2E speaker encoder (Wan et al. 2018), ported to Keras and run by OpenVINO.

The weights come from Resemblyzer's `pretrained.pt` (Apache-2.0), read without torch
(`torch_pickle.py`), imported once into the Keras port (`weights.py`), and run on 1.6 s windows
of 40-band mel power (`features.py`). `encoder.py` is the encoder the cache sees.
"""
