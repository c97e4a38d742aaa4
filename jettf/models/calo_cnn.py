"""Configurable calorimeter-image CNN of 004 (Collado thesis, Ch. 3 electron ID and Ch. 4 muon isolation).

Conv blocks, each two 3x3 convolutions (ReLU, 'same') and a 2x2 max-pool; flatten; [standardized high-level /
global features concatenated]; dense layers (ReLU) each followed by dropout; softmax head. Orthogonal weight
initialization as in the thesis. The thesis' Bayesian search ranges (Table 3.3) are the search space of the
tuning module:

    conv blocks 1-4, filters 8-128, dense layers 1-3, hidden units 1-200, dropout 0-0.5 (learning rate 1e-4-1e-2)

``SEARCH_SPACE`` holds them; values outside are allowed (the muon network of App. A.1.1 uses 4 dense layers).
Defaults are the best ECAL network of Table 3.5 (3 blocks of 117 filters, 2 dense layers of 160, no dropout);
``BEST`` holds Table 3.5's networks and the muon-image best of App. A.1.1.

Images of different granularity (004 Fig. 3.8: the 31 x 31 ECAL and the 8 x 8 HCAL image) each get their own
tower of conv blocks: ``extra_images={"hcal": (8, 8, 1)}`` adds an input named ``"hcal"`` next to ``"image"``,
with as many blocks as its side allows (8 -> 4 -> 2 -> 1: at most 3); the flattened towers are concatenated
(with the standardized global features) before the dense layers. Nothing is resampled. ``standardize=True``
puts an adaptable per-channel ``Normalization`` in front of each image (``"image_norm"``, ``"<name>_norm"``;
004 App. A.1.1: images "preprocessed to have zero mean and unit standard deviation").
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from . import register
from .heads import assemble, classifier_head, make_inputs

__all__ = ["build_calo_cnn", "SEARCH_SPACE", "BEST"]

#: 004 Table 3.3: hyperparameter ranges of the Bayesian search for convolutional networks.
SEARCH_SPACE = {
    "conv_blocks": (1, 4),
    "filters": (8, 128),
    "dense_layers": (1, 3),
    "units": (1, 200),
    "dropout": (0.0, 0.5),
    "learning_rate": (1e-4, 1e-2),
}

#: 004 Table 3.5 (best networks of the Bayesian search, electrons) and App. A.1.1 (muon images): build options
#: and learning rate.
BEST = {
    "ecal": dict(conv_blocks=3, filters=117, dense_layers=2, units=160, dropout=0.0, learning_rate=1e-4),
    "hcal": dict(conv_blocks=2, filters=27, dense_layers=2, units=84, dropout=0.5, learning_rate=1e-2),
    "ecal_hcal": dict(conv_blocks=3, filters=47, dense_layers=2, units=146, dropout=0.0, learning_rate=1e-4),
    "muon_image": dict(conv_blocks=3, filters=56, dense_layers=4, units=178, dropout=0.2062, learning_rate=2e-4),
}


def build_calo_cnn(
    n_classes: int,
    input_shape=None,
    n_global_features: int = 0,
    *,
    conv_blocks: int = 3,
    filters: int | Sequence[int] = 117,
    convs_per_block: int = 2,
    kernel_size: int = 3,
    dense_layers: int = 2,
    units: int | Sequence[int] = 160,
    dropout: float = 0.0,
    kernel_initializer: str = "orthogonal",
    extra_images: dict | None = None,
    standardize: bool = False,
    global_mean=None,
    global_std=None,
    class_names=None,
    metadata=None,
    name: str | None = None,
) -> keras.Model:
    """Calorimeter CNN (default input (32, 32, 1), the muon-isolation grid).

    Options: ``conv_blocks``, ``filters`` (one int for all blocks or one per block), ``convs_per_block`` (2),
    ``kernel_size`` (3), ``dense_layers``, ``units`` (int or one per layer), ``dropout``,
    ``kernel_initializer`` ('orthogonal'), ``extra_images`` ({input name: (H, W, C)}, each its own conv tower),
    ``standardize`` (adaptable per-channel standardization of every image input).
    """
    if input_shape is None:
        input_shape = (32, 32, 1)
    conv_blocks, dense_layers = int(conv_blocks), int(dense_layers)
    if conv_blocks < 1 or dense_layers < 0:
        raise ValueError(f"calo_cnn: conv_blocks={conv_blocks}, dense_layers={dense_layers}; expected >= 1, >= 0")
    filters = [int(filters)] * conv_blocks if isinstance(filters, (int, float)) else [int(f) for f in filters]
    units = [int(units)] * dense_layers if isinstance(units, (int, float)) else [int(u) for u in units]
    if len(filters) != conv_blocks or len(units) != dense_layers:
        raise ValueError(
            f"calo_cnn: {len(filters)} filters for {conv_blocks} blocks, {len(units)} units for {dense_layers} layers"
        )
    if min(input_shape[0], input_shape[1]) // 2**conv_blocks < 1:
        raise ValueError(
            f"calo_cnn: input_shape={tuple(input_shape)} is too small for {conv_blocks} 2x2 poolings"
        )
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"calo_cnn: dropout={dropout}; expected in [0, 1)")
    inputs = make_inputs(input_shape, n_global_features, kind="image")
    towers = {"image": (inputs["image"], conv_blocks, "")}
    for image_name, shape in (extra_images or {}).items():
        shape = tuple(int(d) for d in shape)
        if image_name in inputs or len(shape) != 3:
            raise ValueError(
                f"calo_cnn: extra_images[{image_name!r}] = {shape}; expected a new input name and (H, W, C)"
            )
        inputs[image_name] = keras.Input(shape=shape, name=image_name, dtype="float32")
        blocks = min(conv_blocks, max(int(min(shape[:2])).bit_length() - 1, 0))
        if blocks < 1:
            raise ValueError(f"calo_cnn: extra_images[{image_name!r}] = {shape} is too small for one 2x2 pooling")
        towers[image_name] = (inputs[image_name], blocks, f"{image_name}_")
    flat = []
    for image_name, (x, blocks, prefix) in towers.items():
        if standardize:
            x = keras.layers.Normalization(axis=-1, name=f"{image_name}_norm", dtype="float32")(x)
        for b, f in enumerate(filters[:blocks], start=1):
            for c in range(1, int(convs_per_block) + 1):
                x = keras.layers.Conv2D(
                    f,
                    kernel_size,
                    padding="same",
                    activation="relu",
                    kernel_initializer=kernel_initializer,
                    name=f"{prefix}block{b}_conv{c}",
                )(x)
            x = keras.layers.MaxPooling2D(2, name=f"{prefix}block{b}_pool")(x)
        flat.append(keras.layers.Flatten(name=f"{prefix}flatten")(x))
    probs = classifier_head(
        flat,
        inputs,
        n_classes,
        mlp_units=units,
        mlp_activation="relu",
        dropout=float(dropout),
        mlp_prefix="dense",
        global_mean=global_mean,
        global_std=global_std,
        class_names=class_names,
        metadata=metadata,
        kernel_initializer=kernel_initializer,
    )
    return assemble(inputs, probs, name or "calo_cnn")


register(
    "calo_cnn",
    build_calo_cnn,
    paper="004 (Collado thesis), calorimeter-image CNN and its search space",
    description="conv blocks (2x conv3x3 + pool) -> dense layers with dropout; configurable",
)
