"""Fully connected network on high-level features only (004: the networks of expert features, Table 3.1;
isolation cones, Table 4.1).

Input ``global_features`` ``[N, F]`` (standardized inside the model: ``"global_features_norm"``, adapt it with
``jettf.models.adapt_normalization(model, global_features=...)``) -> ``dense_layers`` ReLU layers of ``units``
each followed by ``dropout`` -> softmax over the classes (binary tasks: two classes, the project's convention;
004 uses one logistic unit). Orthogonal initial weights as in 004 (section 3.6, App. A.1).

``SEARCH_SPACE`` is 004 Table 3.4 (Bayesian search for fully connected networks): dense layers 1-8, hidden
units 1-200, learning rate 1e-4-1e-2, dropout 0-0.5 (App. A.2 for the isolation networks: 2-8 layers).
Defaults are 004 Table 3.5's best HL network (5 layers of 149 units, dropout 0.0019, learning rate 1e-3);
``BEST["isolation"]`` is App. A.1.3's (4 layers of 179, dropout 0.016, learning rate 2e-4).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from . import register
from .heads import assemble, classifier_head

__all__ = ["build_dense", "SEARCH_SPACE", "BEST"]

#: 004 Table 3.4: hyperparameter ranges of the Bayesian search for fully connected networks.
SEARCH_SPACE = {
    "dense_layers": (1, 8),
    "units": (1, 200),
    "dropout": (0.0, 0.5),
    "learning_rate": (1e-4, 1e-2),
}

#: 004 Table 3.5 (HL features) and App. A.1.3 (isolation cones): build options and learning rate.
BEST = {
    "hl": dict(dense_layers=5, units=149, dropout=0.0019, learning_rate=1e-3),
    "isolation": dict(dense_layers=4, units=179, dropout=0.016, learning_rate=2e-4),
}


def build_dense(
    n_classes: int,
    input_shape=None,
    n_global_features: int = 0,
    *,
    dense_layers: int = 5,
    units: int | Sequence[int] = 149,
    dropout: float = 0.0019,
    kernel_initializer: str = "orthogonal",
    global_mean=None,
    global_std=None,
    class_names=None,
    metadata=None,
    name: str | None = None,
) -> keras.Model:
    """Dense network on ``n_global_features`` features (``input_shape`` None or ``(F,)``).

    Options: ``dense_layers``, ``units`` (int or one per layer), ``dropout``, ``kernel_initializer``.
    """
    n = int(n_global_features)
    if n < 1:
        raise ValueError(f"dense: n_global_features={n_global_features}; expected >= 1 (the network reads only "
                         "global features)")
    if input_shape is not None and tuple(input_shape) != (n,):
        raise ValueError(f"dense: input_shape={tuple(input_shape)}; expected None or ({n},)")
    dense_layers = int(dense_layers)
    units = [int(units)] * dense_layers if isinstance(units, (int, float)) else [int(u) for u in units]
    if dense_layers < 1 or len(units) != dense_layers:
        raise ValueError(f"dense: dense_layers={dense_layers} with units={units}; expected >= 1 layer, one size each")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dense: dropout={dropout}; expected in [0, 1)")
    inputs = {"global_features": keras.Input(shape=(n,), name="global_features", dtype="float32")}
    probs = classifier_head(
        [],
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
    return assemble(inputs, probs, name or "dense")


register(
    "dense",
    build_dense,
    input_kind="features",
    paper="004 (Collado thesis), networks of high-level features (Tables 3.1, 3.4, 4.1)",
    description="dense layers with dropout on the standardized global features only",
)
