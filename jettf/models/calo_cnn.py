"""Configurable calorimeter-image CNN of 004 (Collado thesis, Ch. 3 electron ID and Ch. 4 muon isolation).

Conv blocks, each two 3x3 convolutions (ReLU, 'same') and a 2x2 max-pool; flatten; [standardized high-level /
global features concatenated]; dense layers (ReLU) each followed by dropout; softmax head. Orthogonal weight
initialization as in the thesis. The thesis' Bayesian search ranges (Table 3.3) are the search space of the
tuning module:

    conv blocks 1-4, filters 8-128, dense layers 1-3, hidden units 1-200, dropout 0-0.5 (learning rate 1e-4-1e-2)

``SEARCH_SPACE`` holds them; values outside are allowed (the muon network of App. A.1.1 uses 4 dense layers).
Defaults are the best ECAL network of Table 3.5 (3 blocks of 117 filters, 2 dense layers of 160, no dropout);
the muon-image best is ``conv_blocks=3, filters=56, dense_layers=4, units=178, dropout=0.2062``.
The thesis fuses a second, coarser HCAL image through its own tower; here one ``image`` input carries all
channels at one granularity (resample HCAL onto the ECAL grid as an extra channel).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from . import register
from .heads import assemble, classifier_head, make_inputs

__all__ = ["build_calo_cnn", "SEARCH_SPACE"]

#: 004 Table 3.3: hyperparameter ranges of the Bayesian search for convolutional networks.
SEARCH_SPACE = {
    "conv_blocks": (1, 4),
    "filters": (8, 128),
    "dense_layers": (1, 3),
    "units": (1, 200),
    "dropout": (0.0, 0.5),
    "learning_rate": (1e-4, 1e-2),
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
    global_mean=None,
    global_std=None,
    class_names=None,
    metadata=None,
    name: str | None = None,
) -> keras.Model:
    """Calorimeter CNN (default input (32, 32, 1), the muon-isolation grid).

    Options: ``conv_blocks``, ``filters`` (one int for all blocks or one per block), ``convs_per_block`` (2),
    ``kernel_size`` (3), ``dense_layers``, ``units`` (int or one per layer), ``dropout``,
    ``kernel_initializer`` ('orthogonal').
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
    x = inputs["image"]
    for b, f in enumerate(filters, start=1):
        for c in range(1, int(convs_per_block) + 1):
            x = keras.layers.Conv2D(
                f,
                kernel_size,
                padding="same",
                activation="relu",
                kernel_initializer=kernel_initializer,
                name=f"block{b}_conv{c}",
            )(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    probs = classifier_head(
        x,
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
