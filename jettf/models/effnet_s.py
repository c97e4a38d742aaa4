"""EffNet-S: EfficientNet at negative compound-scaling phi for small jet images (002, Baruah et al.).

EfficientNet (Tan & Le 2019) rebuilt from public Keras layers: a 3x3 stride-2 stem, the seven MBConv stages of
B0 (inverted bottleneck: 1x1 expansion, depthwise convolution, squeeze-and-excitation, 1x1 projection, identity
residual when shapes allow), swish activations and batch norm, a 1x1 "top" convolution to 1280 x width
channels and a global-average-pooling "aggregation" layer. Compound scaling with phi:

    depth  d = alpha**phi  (alpha = 1.2): stage repeats ceil(d * repeats_B0)
    width  w = beta**phi   (beta  = 1.1): filters rounded to multiples of 8 as in Keras (never below 90 %)
    resolution r = gamma**phi (gamma = 1.15): 224 * r rounded to a multiple of 4

For phi = -13..-9 every stage has one block ("1A".."7A"), and the presets are the paper's (Table 2):

    S0: phi=-13, 36 px   S1: -12, 40 px   S2: -11, 48 px   S3: -10, 56 px   S4: -9, 64 px

Any phi works (``phi=`` overrides the preset), including 0 (B0 at 224 px). The network runs at the preset's
resolution; an input of another size is zero-padded / centre-cropped (``fit="pad"``, default; zero is the
mean of a standardized image) or bilinearly resized (``fit="resize"``) to it inside the model - 002 feeds
28x28 crops to S0 (36) this way.

Dropout: EfficientNet raises the top dropout with phi; 002 extrapolates it linearly and finds none is needed
below 90 px, so ``dropout_rate=None`` (default) and ``drop_connect_rate=None`` mean 0 below 90 px and Keras'
B0 values (0.2, 0.2) from 90 px up. Explicit floats override.

The input first passes a per-channel ``Normalization`` named ``"image_norm"`` (identity until adapted with
``jettf.models.adapt_normalization(model, image=...)``); like Keras' EfficientNet input normalization it holds
7 non-trainable numbers for 3 channels, so images-only parameter counts equal Keras' own builder exactly:
158,369 / 195,573 / 215,047 / 250,699 / 306,095 for S0..S4 with 2 classes (002 reports 158K, 184K, 215K,
258K, 305K; its Mathematica rounding differs slightly).

Global features (002 Sec. 2.5): standardized, concatenated after the aggregation (pooling) layer and followed by
an MLP block, ``mlp_units=(200,)`` by default, which reproduces the paper's +84K..+117K parameters for its 53
features (e.g. S0: 158K -> 242K).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras

from . import register
from .heads import assemble, classifier_head, make_inputs

__all__ = ["build_effnet_s", "PRESETS", "ALPHA", "BETA", "GAMMA", "B0_BLOCKS", "scaled_config"]

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
#: preset -> (phi, input resolution in pixels), 002 Table 2.
PRESETS = {"S0": (-13, 36), "S1": (-12, 40), "S2": (-11, 48), "S3": (-10, 56), "S4": (-9, 64)}
#: EfficientNet-B0 stages: (kernel, repeats, filters_in, filters_out, expand_ratio, strides, se_ratio).
B0_BLOCKS = (
    (3, 1, 32, 16, 1, 1, 0.25),
    (3, 2, 16, 24, 6, 2, 0.25),
    (5, 2, 24, 40, 6, 2, 0.25),
    (3, 3, 40, 80, 6, 2, 0.25),
    (5, 3, 80, 112, 6, 1, 0.25),
    (5, 4, 112, 192, 6, 2, 0.25),
    (3, 1, 192, 320, 6, 1, 0.25),
)
STEM_FILTERS, TOP_FILTERS, DIVISOR = 32, 1280, 8
NO_DROPOUT_BELOW = 90  # pixels, 002's linear extrapolation of the B0..B7 dropout schedule

# Keras' EfficientNet initializers, as configs: every layer deserializes its own instance (an initializer
# instance draws its seed once, so sharing one would give equal-shaped layers equal weights).
_CONV_INIT = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
_DENSE_INIT = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}


def round_filters(filters: float, width: float, divisor: int = DIVISOR) -> int:
    """Keras/TPU EfficientNet channel rounding: nearest multiple of ``divisor``, never below 90 %."""
    filters *= width
    new = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if new < 0.9 * filters:
        new += divisor
    return int(new)


def round_repeats(repeats: int, depth: float) -> int:
    """Stage repeats scaled by depth, rounded up."""
    return int(math.ceil(depth * repeats))


def resolution_for(phi: float) -> int:
    """224 * gamma**phi rounded to a multiple of 4 (gives 36, 40, 48, 56, 64 for phi = -13..-9)."""
    return int(4 * round(224 * GAMMA**phi / 4))


def scaled_config(phi: float) -> dict:
    """Depth/width coefficients, resolution and per-stage (filters_in, filters_out, repeats) for ``phi``."""
    depth, width = ALPHA**phi, BETA**phi
    stages = [
        (round_filters(fi, width), round_filters(fo, width), round_repeats(r, depth))
        for (_, r, fi, fo, _, _, _) in B0_BLOCKS
    ]
    return {
        "phi": phi,
        "depth": depth,
        "width": width,
        "resolution": resolution_for(phi),
        "stem": round_filters(STEM_FILTERS, width),
        "stages": stages,
        "top": round_filters(TOP_FILTERS, width),
    }


def _correct_pad(size: int, kernel: int):
    """Zero padding that makes a 'valid' stride-2 convolution behave like TF's 'same' (Keras' correct_pad)."""
    adjust = 1 - size % 2
    return (kernel // 2 - adjust, kernel // 2)


def _fit(x, size: int, mode: str):
    """Bring a square-ish image to ``size`` x ``size``: pad/crop symmetrically, or resize."""
    h, w = int(x.shape[1]), int(x.shape[2])
    if (h, w) == (size, size):
        return x
    if mode == "resize":
        return keras.layers.Resizing(size, size, interpolation="bilinear", name="fit_resize")(x)
    if mode != "pad":
        raise ValueError(f"effnet_s: fit={mode!r}; expected 'pad' or 'resize'")
    pads, crops = [], []
    for n in (h, w):
        d = size - n
        lo = abs(d) // 2
        pads.append((lo, abs(d) - lo) if d > 0 else (0, 0))
        crops.append((lo, abs(d) - lo) if d < 0 else (0, 0))
    if any(sum(p) for p in pads):
        x = keras.layers.ZeroPadding2D(tuple(pads), name="fit_pad")(x)
    if any(sum(c) for c in crops):
        x = keras.layers.Cropping2D(tuple(crops), name="fit_crop")(x)
    return x


def _mbconv(x, *, name, filters_in, filters_out, kernel, strides, expand_ratio, se_ratio, drop_rate, activation):
    """One MBConv block (Keras' EfficientNet ``block``): expand, depthwise, SE, project, residual."""
    inputs = x
    filters = filters_in * expand_ratio
    if expand_ratio != 1:
        x = keras.layers.Conv2D(
            filters, 1, padding="same", use_bias=False, kernel_initializer=_CONV_INIT, name=f"{name}expand_conv"
        )(x)
        x = keras.layers.BatchNormalization(name=f"{name}expand_bn")(x)
        x = keras.layers.Activation(activation, name=f"{name}expand_activation")(x)
    if strides == 2:
        x = keras.layers.ZeroPadding2D(
            (_correct_pad(int(x.shape[1]), kernel), _correct_pad(int(x.shape[2]), kernel)), name=f"{name}dwconv_pad"
        )(x)
        pad = "valid"
    else:
        pad = "same"
    x = keras.layers.DepthwiseConv2D(
        kernel, strides=strides, padding=pad, use_bias=False, depthwise_initializer=_CONV_INIT, name=f"{name}dwconv"
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}bn")(x)
    x = keras.layers.Activation(activation, name=f"{name}activation")(x)
    if 0 < se_ratio <= 1:
        filters_se = max(1, int(filters_in * se_ratio))
        se = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}se_squeeze")(x)
        se = keras.layers.Conv2D(
            filters_se, 1, padding="same", activation=activation, kernel_initializer=_CONV_INIT, name=f"{name}se_reduce"
        )(se)
        se = keras.layers.Conv2D(
            filters, 1, padding="same", activation="sigmoid", kernel_initializer=_CONV_INIT, name=f"{name}se_expand"
        )(se)
        x = keras.layers.Multiply(name=f"{name}se_excite")([x, se])
    x = keras.layers.Conv2D(
        filters_out, 1, padding="same", use_bias=False, kernel_initializer=_CONV_INIT, name=f"{name}project_conv"
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}project_bn")(x)
    if strides == 1 and filters_in == filters_out:
        if drop_rate > 0:
            # Stochastic depth: drop the whole residual branch per example.
            x = keras.layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}drop")(x)
        x = keras.layers.Add(name=f"{name}add")([x, inputs])
    return x


def effnet_backbone(x, phi: float, *, activation="swish", drop_connect_rate=0.0):
    """EfficientNet feature extractor at compound-scaling ``phi``: image -> pooled features [N, top filters]."""
    cfg = scaled_config(phi)
    depth, width = cfg["depth"], cfg["width"]
    x = keras.layers.ZeroPadding2D(
        (_correct_pad(int(x.shape[1]), 3), _correct_pad(int(x.shape[2]), 3)), name="stem_conv_pad"
    )(x)
    x = keras.layers.Conv2D(
        cfg["stem"], 3, strides=2, padding="valid", use_bias=False, kernel_initializer=_CONV_INIT, name="stem_conv"
    )(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.Activation(activation, name="stem_activation")(x)

    total = float(sum(round_repeats(b[1], depth) for b in B0_BLOCKS))
    b = 0
    for i, (kernel, repeats, f_in, f_out, expand, strides, se_ratio) in enumerate(B0_BLOCKS):
        f_in, f_out = round_filters(f_in, width), round_filters(f_out, width)
        for j in range(round_repeats(repeats, depth)):
            x = _mbconv(
                x,
                name=f"block{i + 1}{chr(ord('a') + j)}_",
                filters_in=f_in if j == 0 else f_out,
                filters_out=f_out,
                kernel=kernel,
                strides=strides if j == 0 else 1,
                expand_ratio=expand,
                se_ratio=se_ratio,
                drop_rate=drop_connect_rate * b / total,
                activation=activation,
            )
            b += 1
    x = keras.layers.Conv2D(
        cfg["top"], 1, padding="same", use_bias=False, kernel_initializer=_CONV_INIT, name="top_conv"
    )(x)
    x = keras.layers.BatchNormalization(name="top_bn")(x)
    x = keras.layers.Activation(activation, name="top_activation")(x)
    return keras.layers.GlobalAveragePooling2D(name="aggregation")(x)


def build_effnet_s(
    n_classes: int,
    input_shape=None,
    n_global_features: int = 0,
    *,
    preset: str = "S0",
    phi: float | None = None,
    resolution: int | None = None,
    fit: str = "pad",
    dropout_rate: float | None = None,
    drop_connect_rate: float | None = None,
    activation: str = "swish",
    mlp_units: Sequence[int] | None = None,
    mlp_activation: str = "relu",
    mlp_dropout: float = 0.0,
    global_mean=None,
    global_std=None,
    class_names=None,
    metadata=None,
    name: str | None = None,
) -> keras.Model:
    """EffNet-S (see module docstring).

    Options: ``preset`` S0..S4; ``phi`` (any float, overrides the preset's phi); ``resolution`` (network input
    size; default the preset's, or 224*gamma**phi rounded to 4 when ``phi`` is given); ``input_shape`` (the
    images fed to the model, default (resolution, resolution, 3)); ``fit`` 'pad' | 'resize' for inputs of
    another size; ``dropout_rate`` / ``drop_connect_rate`` (None: 0 below 90 px, else 0.2);
    ``activation`` (swish); ``mlp_units`` after the aggregation layer (default (200,) with global features,
    () without); ``mlp_activation``, ``mlp_dropout``.
    """
    if phi is None:
        if preset not in PRESETS:
            raise ValueError(f"effnet_s: preset={preset!r}; expected one of {', '.join(PRESETS)} or phi=")
        phi, preset_res = PRESETS[preset]
    else:
        preset_res = resolution_for(phi)
    res = int(resolution or preset_res)
    if input_shape is None:
        input_shape = (res, res, 3)
    if dropout_rate is None:
        dropout_rate = 0.0 if res < NO_DROPOUT_BELOW else 0.2
    if drop_connect_rate is None:
        drop_connect_rate = 0.0 if res < NO_DROPOUT_BELOW else 0.2
    if mlp_units is None:
        mlp_units = (200,) if n_global_features else ()

    inputs = make_inputs(input_shape, n_global_features, kind="image")
    x = keras.layers.Normalization(axis=-1, name="image_norm", dtype="float32")(inputs["image"])
    x = _fit(x, res, fit)
    features = effnet_backbone(x, phi, activation=activation, drop_connect_rate=drop_connect_rate)
    probs = classifier_head(
        features,
        inputs,
        n_classes,
        mlp_units=mlp_units,
        mlp_activation=mlp_activation,
        dropout=mlp_dropout,
        feature_dropout=dropout_rate,
        global_mean=global_mean,
        global_std=global_std,
        class_names=class_names,
        metadata=metadata,
        kernel_initializer=_DENSE_INIT,
    )
    label = preset if phi == PRESETS.get(preset, (None,))[0] else f"phi{phi:g}"
    return assemble(inputs, probs, name or f"effnet_s_{label}")


register(
    "effnet_s",
    build_effnet_s,
    paper="002 (Baruah et al.), EfficientNet at negative phi",
    description="EfficientNet rebuilt from Keras layers with compound scaling at phi -13..-9 (S0..S4)",
)
