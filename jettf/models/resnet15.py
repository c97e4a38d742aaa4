"""ResNet-15 of 003 (Andrews et al., end-to-end quark/gluon jet images from CMS Open Data).

The architecture of the E2E papers (found optimal there and reused in 003): a 7x7 stride-2 convolution with 16
filters (ReLU) -> 2x2 max-pool -> 3 residual blocks of 16 filters -> one down-sampling block to 32 filters
(first 3x3 conv with stride 2, 1x1 stride-2 projection shortcut) -> 3 residual blocks of 32 -> global max pool.
Each residual block is conv3x3 -> ReLU -> conv3x3, added to the shortcut, then ReLU; there is no batch norm.
1 + 7 x 2 = 15 convolutions. Built for multi-channel detector images (tracks, ECAL, HCAL at 125 x 125).

Output: 003 ends with one sigmoid unit; this project's convention is a softmax over ``n_classes`` (two for
quark vs gluon), so the head is a Dense(n_classes) + float32 softmax. Global features (003's E2E code appends
the jet-seed position) are concatenated after the global max pool.
"""

from __future__ import annotations

import keras

from . import register
from .heads import assemble, classifier_head, make_inputs

__all__ = ["build_resnet15"]


def _res_block(x, filters: int, *, downsample: bool, name: str):
    strides = 2 if downsample else 1
    y = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", activation="relu", name=f"{name}_conv1")(x)
    y = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(y)
    shortcut = x
    if downsample or int(x.shape[-1]) != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=strides, padding="same", name=f"{name}_shortcut")(x)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.Activation("relu", name=f"{name}_relu")(y)


def build_resnet15(
    n_classes: int,
    input_shape=None,
    n_global_features: int = 0,
    *,
    filters=(16, 32),
    blocks_per_stage: int = 3,
    stem_kernel: int = 7,
    global_mean=None,
    global_std=None,
    class_names=None,
    metadata=None,
    name: str | None = None,
) -> keras.Model:
    """ResNet-15 (default input (125, 125, 3): tracks, ECAL, HCAL).

    Options: ``filters`` (16, 32) for the two stages, ``blocks_per_stage`` (3), ``stem_kernel`` (7).
    """
    if input_shape is None:
        input_shape = (125, 125, 3)
    f1, f2 = (int(f) for f in filters)
    inputs = make_inputs(input_shape, n_global_features, kind="image")
    x = keras.layers.Conv2D(f1, stem_kernel, strides=2, padding="same", activation="relu", name="stem_conv")(
        inputs["image"]
    )
    x = keras.layers.MaxPooling2D(2, name="stem_pool")(x)
    for i in range(blocks_per_stage):
        x = _res_block(x, f1, downsample=False, name=f"block1_{i + 1}")
    x = _res_block(x, f2, downsample=True, name="block2_down")
    for i in range(blocks_per_stage):
        x = _res_block(x, f2, downsample=False, name=f"block3_{i + 1}")
    x = keras.layers.GlobalMaxPooling2D(name="global_max_pool")(x)
    probs = classifier_head(
        x,
        inputs,
        n_classes,
        global_mean=global_mean,
        global_std=global_std,
        class_names=class_names,
        metadata=metadata,
    )
    return assemble(inputs, probs, name or "resnet15")


register(
    "resnet15",
    build_resnet15,
    paper="003 (Andrews et al.), E2E ResNet-15 without batch norm",
    description="ResNet-15 (16/32 filters, global max pool) for multi-channel detector images",
)
