"""YAMNet's MobileNetV1 body in Keras 3, described as a layer table.

The table and layer names follow the official `yamnet.py`, so every layer lines up
with its checkpoint variables. Keras 3 forbids "/" in layer names, so the Keras
layer `layer2.depthwise_conv` stands for the checkpoint's `layer2/depthwise_conv`.
The model maps log-mel patches [B, 96, 64] to (scores [B, 521], embeddings [B, 1024]).
"""

from __future__ import annotations

from typing import NamedTuple

import keras

from .params import Params


class LayerDef(NamedTuple):
    kind: str  # "conv" (full convolution) or "separable" (depthwise then pointwise)
    kernel: tuple[int, int]
    stride: int
    filters: int


YAMNET_LAYERS: tuple[LayerDef, ...] = (
    LayerDef("conv", (3, 3), 2, 32),
    LayerDef("separable", (3, 3), 1, 64),
    LayerDef("separable", (3, 3), 2, 128),
    LayerDef("separable", (3, 3), 1, 128),
    LayerDef("separable", (3, 3), 2, 256),
    LayerDef("separable", (3, 3), 1, 256),
    LayerDef("separable", (3, 3), 2, 512),
    LayerDef("separable", (3, 3), 1, 512),
    LayerDef("separable", (3, 3), 1, 512),
    LayerDef("separable", (3, 3), 1, 512),
    LayerDef("separable", (3, 3), 1, 512),
    LayerDef("separable", (3, 3), 1, 512),
    LayerDef("separable", (3, 3), 2, 1024),
    LayerDef("separable", (3, 3), 1, 1024),
)

LOGITS = "dense"  # the Hub model's name for the classifier layer


def keras_name(checkpoint_prefix: str) -> str:
    return checkpoint_prefix.replace("/", ".")


def _conv(x, name: str, layer: LayerDef):
    return keras.layers.Conv2D(
        layer.filters, layer.kernel, strides=layer.stride, padding="same", activation="relu",
        name=keras_name(f"{name}/conv"),
    )(x)


def _separable_conv(x, name: str, layer: LayerDef):
    x = keras.layers.DepthwiseConv2D(
        layer.kernel, strides=layer.stride, padding="same", activation="relu",
        name=keras_name(f"{name}/depthwise_conv"),
    )(x)
    return keras.layers.Conv2D(
        layer.filters, (1, 1), padding="same", activation="relu",
        name=keras_name(f"{name}/pointwise_conv"),
    )(x)


_BUILDERS = {"conv": _conv, "separable": _separable_conv}


def build_yamnet(params: Params) -> keras.Model:
    """Patches [B, 96, 64] -> (scores [B, 521], embeddings [B, 1024]), weights uninitialised.

    Each convolution carries a bias and its ReLU: the checkpoint's BatchNorm
    (inference statistics, no scale) is folded into the kernel and bias at import
    (`weights.fold_batch_norm`). That is the same function with 28 fewer ops, and
    lets TensorFlow fuse convolution, bias and ReLU into one kernel.
    """
    patches = keras.Input(shape=params.patch_shape, name="patches")
    x = keras.layers.Reshape((*params.patch_shape, 1), name="add_channel")(patches)
    for index, layer in enumerate(YAMNET_LAYERS, start=1):
        x = _BUILDERS[layer.kind](x, f"layer{index}", layer)
    embeddings = keras.layers.GlobalAveragePooling2D(name="embeddings")(x)
    logits = keras.layers.Dense(params.num_classes, name=LOGITS)(embeddings)
    scores = keras.layers.Activation("sigmoid", name="scores")(logits)
    return keras.Model(patches, [scores, embeddings], name="yamnet")


def layer_weights(model: keras.Model) -> dict[str, keras.Variable]:
    """Each variable by checkpoint-style name, e.g. `layer1/conv/kernel`, `dense/bias`."""
    return {
        f"{layer.name.replace('.', '/')}/{variable.name}": variable
        for layer in model.layers
        for variable in layer.weights
    }
