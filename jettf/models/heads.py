"""Inputs and the classification head shared by every model in the zoo.

One place builds the input dict (``image`` / ``constituents`` and optional ``global_features``) and one function
(``classifier_head``) turns backbone features into class probabilities, fusing the global jet features on the
way. No model repeats this logic.

Global-feature fusion (002 Sec. 2.5, 003's ResNet-15 head, 004's calorimeter CNN): the ``global_features``
input ``[N, F]`` goes through a ``keras.layers.Normalization`` layer named ``"global_features_norm"`` and is
concatenated with the backbone's pooled / flattened features, then an optional MLP block, then the logits and
a float32 softmax. Standardization is either

* adaptable (default): mean 0 / variance 1 until the trainer calls
  ``jettf.models.adapt_normalization(model, global_features=train_values)`` (or
  ``model.get_layer("global_features_norm").adapt(values)``) *before* compiling; the mean and variance are
  weights, so they are saved with the model; or
* fixed: pass ``global_mean=`` and ``global_std=`` (length-F sequences) to ``build``; they are stored in the
  layer config. A zero standard deviation (a constant feature) is replaced by 1.

The standardization always computes in float32 (under ``mixed_bfloat16`` a jet pT of ~1 TeV would otherwise be
rounded to ~4 GeV before the mean is subtracted); its O(1) output is then cast to the compute dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from .layers import ClassProbabilities

__all__ = [
    "make_inputs",
    "standardize_global_features",
    "mlp_block",
    "classifier_head",
    "assemble",
    "default_class_names",
    "OUTPUT_NAME",
    "LOGITS_NAME",
    "GLOBAL_NORM_NAME",
    "PARTICLE_NORM_NAME",
]

#: Name of the output layer (float32 softmax).
OUTPUT_NAME = "probabilities"
#: Name of the last Dense layer (pre-softmax scores, e.g. for Grad-CAM).
LOGITS_NAME = "logits"
#: Name of the Normalization layer that standardizes the global features.
GLOBAL_NORM_NAME = "global_features_norm"
#: The layer that standardizes the per-particle inputs of a ``pfn`` with ``particle_features="linear"``.
PARTICLE_NORM_NAME = "constituents_norm"


def default_class_names(n_classes: int) -> list[str]:
    return [f"class_{i}" for i in range(n_classes)]


def make_inputs(
    input_shape: Sequence[int | None],
    n_global_features: int = 0,
    kind: str = "image",
) -> dict[str, keras.KerasTensor]:
    """Symbolic model inputs: ``{kind: [N, *input_shape]}`` plus ``global_features: [N, F]`` when F > 0.

    ``kind`` is ``"image"`` (``input_shape`` = (H, W, C), channels last) or ``"constituents"``
    (``input_shape`` = (M, 4) of pt, eta, phi, energy, zero-padded; M may be None).
    """
    if kind not in ("image", "constituents"):
        raise ValueError(f"make_inputs: kind={kind!r}; expected 'image' or 'constituents'")
    shape = tuple(input_shape)
    if kind == "image" and len(shape) != 3:
        raise ValueError(f"input_shape={shape}: expected (height, width, channels) for an image model")
    if kind == "constituents" and (len(shape) != 2 or shape[1] != 4):
        raise ValueError(f"input_shape={shape}: expected (n_particles, 4) of (pt, eta, phi, energy)")
    if n_global_features < 0:
        raise ValueError(f"n_global_features={n_global_features}: expected >= 0")
    inputs = {kind: keras.Input(shape=shape, name=kind, dtype="float32")}
    if n_global_features:
        inputs["global_features"] = keras.Input(
            shape=(int(n_global_features),), name="global_features", dtype="float32"
        )
    return inputs


def standardization(x, mean=None, std=None, *, name: str, what: str = "global"):
    """``Normalization`` over the last axis of ``x``: adaptable (``mean`` and ``std`` None), or fixed from the
    length-F ``mean`` / ``std`` (``what``: the argument prefix the error messages name). A zero standard
    deviation (a constant feature) is replaced by 1, as scikit-learn's StandardScaler does."""
    n = x.shape[-1]
    if (mean is None) != (std is None):
        raise ValueError(f"{what}_mean and {what}_std must be given together (or neither, to adapt later)")
    if mean is None:
        return keras.layers.Normalization(axis=-1, name=name, dtype="float32")(x)
    mean = np.asarray(mean, dtype="float64").reshape(-1)
    std = np.asarray(std, dtype="float64").reshape(-1)
    if mean.shape != (n,) or std.shape != (n,):
        raise ValueError(f"{what}_mean/{what}_std: shapes {mean.shape}/{std.shape}; expected ({n},), one per feature")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))) or np.any(std < 0):
        raise ValueError(f"{what}_mean/{what}_std: expected finite values and non-negative standard deviations")
    std = np.where(std > 0, std, 1.0)
    return keras.layers.Normalization(axis=-1, mean=mean.tolist(), variance=(std**2).tolist(), name=name,
                                      dtype="float32")(x)


def standardize_global_features(global_input, global_mean=None, global_std=None):
    """``Normalization`` of the global features: adaptable, or fixed from ``global_mean``/``global_std``."""
    return standardization(global_input, global_mean, global_std, name=GLOBAL_NORM_NAME, what="global")


def mlp_block(x, units: Sequence[int], *, activation="relu", dropout=0.0, prefix="mlp", kernel_initializer=None):
    """Dense layers ``units`` each followed by ``activation`` and ``Dropout(dropout)`` when > 0.

    Layers are named ``prefix`` (one layer) or ``prefix_1, prefix_2, ...``.
    """
    units = [int(u) for u in units]
    for i, u in enumerate(units):
        if u < 1:
            raise ValueError(f"mlp units={units}: expected positive integers")
        name = prefix if len(units) == 1 else f"{prefix}_{i + 1}"
        kwargs = {"kernel_initializer": kernel_initializer} if kernel_initializer is not None else {}
        x = keras.layers.Dense(u, activation=activation, name=name, **kwargs)(x)
        if dropout and dropout > 0:
            x = keras.layers.Dropout(float(dropout), name=f"{name}_dropout")(x)
    return x


def classifier_head(
    features,
    inputs: dict,
    n_classes: int,
    *,
    mlp_units: Sequence[int] = (),
    mlp_activation="relu",
    dropout: float = 0.0,
    feature_dropout: float = 0.0,
    mlp_prefix: str = "mlp",
    global_mean=None,
    global_std=None,
    class_names=None,
    metadata=None,
    kernel_initializer=None,
):
    """Backbone features (one tensor ``[N, D]`` or a list of them) -> class probabilities ``[N, n_classes]``.

    Steps: [concatenate the feature tensors and the standardized ``inputs["global_features"]`` when present]
    -> ``Dropout(feature_dropout)`` -> ``mlp_block(mlp_units, dropout)`` -> ``Dense(n_classes)`` named
    ``"logits"`` -> float32 softmax named ``"probabilities"`` carrying ``class_names`` and ``metadata``.
    """
    parts = list(features) if isinstance(features, (list, tuple)) else [features]
    if "global_features" in inputs:
        parts.append(standardize_global_features(inputs["global_features"], global_mean, global_std))
    elif global_mean is not None or global_std is not None:
        raise ValueError("global_mean/global_std given but n_global_features == 0")
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(axis=-1, name="fusion_concat")(parts)
    if feature_dropout and feature_dropout > 0:
        x = keras.layers.Dropout(float(feature_dropout), name="feature_dropout")(x)
    x = mlp_block(
        x,
        mlp_units,
        activation=mlp_activation,
        dropout=dropout,
        prefix=mlp_prefix,
        kernel_initializer=kernel_initializer,
    )
    kwargs = {"kernel_initializer": kernel_initializer} if kernel_initializer is not None else {}
    logits = keras.layers.Dense(int(n_classes), name=LOGITS_NAME, **kwargs)(x)
    return ClassProbabilities(class_names=class_names, metadata=metadata, name=OUTPUT_NAME)(logits)


def assemble(inputs: dict, outputs, name: str) -> keras.Model:
    """The functional model over the input dict (keys ``image``/``constituents``, ``global_features``)."""
    return keras.Model(inputs=inputs, outputs=outputs, name=name)
