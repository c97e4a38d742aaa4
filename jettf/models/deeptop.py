"""DeepTop CNN (Kasieczka et al. 2017, as described in 001 Sec. 5.1 and compared in 002).

Four convolutions of 8 filters of 4x4 (ReLU, 'same' padding) with a 2x2 max-pool after the second, flatten,
three dense layers of 64 (ReLU), then the softmax head. Default input (37, 37, 1): 002 quotes DeepTop on
1 x 37 x 37 pT images. 002's table lists 610K parameters for "DeepTop", which is the larger CNN of the top-tagging
comparison (more filters); the minimal DeepTop built here has ~178K at 37 px. ``filters``, ``pool_after``
and ``dense_units`` make both variants (e.g. ``filters=(128, 64, 64, 64), pool_after=(2, 4)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from . import register
from .heads import assemble, classifier_head, make_inputs

__all__ = ["build_deeptop"]


def build_deeptop(
    n_classes: int,
    input_shape=None,
    n_global_features: int = 0,
    *,
    filters: Sequence[int] = (8, 8, 8, 8),
    kernel_size: int = 4,
    pool_after: Sequence[int] = (2,),
    dense_units: Sequence[int] = (64, 64, 64),
    activation: str = "relu",
    dropout: float = 0.0,
    global_mean=None,
    global_std=None,
    class_names=None,
    metadata=None,
    name: str | None = None,
) -> keras.Model:
    """DeepTop (default input (37, 37, 1)).

    Options: ``filters`` per conv layer, ``kernel_size`` (4), ``pool_after`` (1-based conv indices followed by
    a 2x2 max-pool), ``dense_units``, ``activation``, ``dropout`` after each dense layer.
    """
    if input_shape is None:
        input_shape = (37, 37, 1)
    inputs = make_inputs(input_shape, n_global_features, kind="image")
    x = inputs["image"]
    for i, f in enumerate(filters, start=1):
        x = keras.layers.Conv2D(int(f), kernel_size, padding="same", activation=activation, name=f"conv{i}")(x)
        if i in pool_after:
            x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    probs = classifier_head(
        x,
        inputs,
        n_classes,
        mlp_units=dense_units,
        mlp_activation=activation,
        dropout=dropout,
        mlp_prefix="dense",
        global_mean=global_mean,
        global_std=global_std,
        class_names=class_names,
        metadata=metadata,
    )
    return assemble(inputs, probs, name or "deeptop")


register(
    "deeptop",
    build_deeptop,
    paper="001 (Kagan review) / 002: DeepTop, Kasieczka et al. 2017",
    description="4 conv layers of 8 4x4 filters, max-pool after the second, 3 dense layers of 64",
)
