"""The runtime study's torch port of YAMNet (`dev/yamnet_torch.py`) computes the Keras port's
function, so `python -m dev bench network-runtimes` compares runtimes on one network."""

from __future__ import annotations

import numpy as np
import torch

from brogue.extract.yamnet.network import build_yamnet, layer_weights
from brogue.extract.yamnet.params import PARAMS
from dev.yamnet_torch import TorchYamnet


def test_torch_port_matches_the_keras_port_on_random_weights():
    model = build_yamnet(PARAMS)
    rng = np.random.default_rng(3)
    for name, variable in layer_weights(model).items():
        if name.endswith("/bias"):  # Keras starts biases at zero, which would hide their mapping
            variable.assign(rng.normal(0.0, 0.1, variable.shape).astype(np.float32))
    patches = rng.normal(-2.0, 2.0, (3, *PARAMS.patch_shape)).astype(np.float32)

    scores, embeddings = model.predict_on_batch(patches)
    with torch.inference_mode():
        port_scores, port_embeddings = TorchYamnet(model).eval()(torch.from_numpy(patches))

    assert port_embeddings.shape == (3, PARAMS.embedding_size)
    assert np.abs(port_embeddings.numpy() - embeddings).max() <= 1e-5 * np.abs(embeddings).max()
    assert np.abs(port_scores.numpy() - scores).max() <= 1e-5
    assert np.abs(embeddings).max() > 0.01  # random weights left the embeddings non-trivial
