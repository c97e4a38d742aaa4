"""LeNet-5 style benchmark CNN of 002 (Baruah et al., Fig. 2 left; Wolfram's LeNet).

conv 5x5 x 20 (valid, ReLU) -> max-pool 2 -> conv 5x5 x 50 (valid, ReLU) -> max-pool 2 -> flatten
-> [concatenate standardized global features] -> Dense 500 (ReLU) -> Dense n_classes -> softmax.

With 3-channel images and 2 classes this gives 428,072 / 653,072 / 1,253,072 parameters at 28 / 32 / 40 px,
matching 002's Table 2 (428K / 653K / 1253K). Global features are concatenated after the flatten layer (002
Sec. 2.5), adding F x 500 + 2F + 1 parameters (the ``Normalization`` layer holds mean, variance and a count);
002 reports +57K for its 53 features, so its MLP block after the concatenation must have been slightly larger
than this one - ``dense_units`` can be changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from . import register
from .heads import assemble, classifier_head, make_inputs

__all__ = ["build_lenet"]


def build_lenet(
    n_classes: int,
    input_shape=None,
    n_global_features: int = 0,
    *,
    filters: Sequence[int] = (20, 50),
    kernel_size: int = 5,
    dense_units: Sequence[int] = (500,),
    activation: str = "relu",
    dropout: float = 0.0,
    global_mean=None,
    global_std=None,
    class_names=None,
    metadata=None,
    name: str | None = None,
) -> keras.Model:
    """LeNet for 28 / 32 / 40 px jet images (default input (28, 28, 3)).

    Options: ``filters`` per conv stage (20, 50), ``kernel_size`` (5), ``dense_units`` after the flatten /
    fusion (500,), ``activation``, ``dropout`` after each dense layer.
    """
    if input_shape is None:
        input_shape = (28, 28, 3)
    inputs = make_inputs(input_shape, n_global_features, kind="image")
    x = inputs["image"]
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(int(f), kernel_size, padding="valid", activation=activation, name=f"conv{i + 1}")(x)
        if x.shape[1] < 2 or x.shape[2] < 2:
            raise ValueError(f"lenet: input_shape={tuple(input_shape)} is too small for {len(filters)} conv stages")
        x = keras.layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
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
    return assemble(inputs, probs, name or f"lenet_{input_shape[0]}")


register(
    "lenet",
    build_lenet,
    paper="002 (Baruah et al.) benchmark; LeCun et al. 1998",
    description="LeNet-5 style CNN (5x5 convs 20/50, dense 500) for 28/32/40 px images",
)
