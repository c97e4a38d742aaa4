"""The Keras 3 model zoo: image taggers, Deep-Sets baselines, one registry.

    >>> import jettf.models as zoo
    >>> zoo.available()
    ['calo_cnn', 'deeptop', 'effnet_s', 'efn', 'ensemble', 'lenet', 'pfn', 'resnet15']
    >>> model = zoo.build("effnet_s", 2, input_shape=(28, 28, 3), preset="S0", class_names=["qcd", "top"])
    >>> zoo.model_class_names(model)
    ['qcd', 'top']

Contract (see CONTRIBUTING.md): a model takes a dict with ``image`` ``[N, H, W, C]`` (or ``constituents``
``[N, M, 4]`` of pt, eta, phi, energy for ``pfn``/``efn``) and, when ``n_global_features > 0``,
``global_features`` ``[N, F]``; it returns float32 softmax probabilities ``[N, n_classes]`` from a layer named
``"probabilities"`` (the pre-softmax Dense is ``"logits"``). Binary tasks use two classes. Global features are
standardized inside the model by a ``Normalization`` layer named ``"global_features_norm"``: call
``adapt_normalization(model, global_features=train_values)`` before compiling, or pass ``global_mean=`` and
``global_std=`` to ``build``.

Common ``build`` options: ``class_names`` (length n_classes; stored in the model and kept by ``.keras``
save/load), ``seed`` (calls ``keras.utils.set_random_seed(seed)`` before building, so the same seed gives the
same initial weights; note this also seeds Python, numpy and the backend globally), ``name`` (model name),
``global_mean``/``global_std``. Architecture options are documented in each module's ``build_*`` function.

Models built here use public Keras 3 APIs only and run on the TensorFlow and the JAX backend. The custom layers
(``jettf.models.layers``) are registered under the package name ``"jettf"``: ``import jettf.models`` before
``keras.saving.load_model``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from .heads import GLOBAL_NORM_NAME, LOGITS_NAME, OUTPUT_NAME, default_class_names

__all__ = [
    "build",
    "available",
    "info",
    "register",
    "ModelInfo",
    "model_class_names",
    "model_metadata",
    "adapt_normalization",
    "count_flops",
    "OUTPUT_NAME",
    "LOGITS_NAME",
    "GLOBAL_NORM_NAME",
]


@dataclass(frozen=True)
class ModelInfo:
    """A registry entry: the builder and what the model eats."""

    name: str
    builder: Callable[..., keras.Model]
    input_kind: str  # "image" or "constituents"
    paper: str  # where the architecture comes from
    description: str


_REGISTRY: dict[str, ModelInfo] = {}


def register(name: str, builder: Callable[..., keras.Model], *, input_kind="image", paper="", description=""):
    """Add a builder ``builder(n_classes, input_shape, n_global_features, *, class_names, metadata, **options)``."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    if input_kind not in ("image", "constituents"):
        raise ValueError(f"register({name!r}): input_kind={input_kind!r}; expected 'image' or 'constituents'")
    _REGISTRY[name] = ModelInfo(name, builder, input_kind, paper, description)
    return builder


def available() -> list[str]:
    """Names accepted by ``build``, sorted."""
    return sorted(_REGISTRY)


def info(name: str) -> ModelInfo:
    """The registry entry of ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}") from None


def _jsonable(value):
    """Options as JSON-safe values for the model's metadata (tuples -> lists, other objects -> repr)."""
    try:
        return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else repr(o)))
    except (TypeError, ValueError):
        return repr(value)


def build(name: str, n_classes: int, input_shape=None, n_global_features: int = 0, **options) -> keras.Model:
    """Build the registered model ``name`` with a softmax over ``n_classes`` (>= 2; binary = 2).

    ``input_shape`` excludes the batch axis: ``(H, W, C)`` for image models, ``(M, 4)`` for ``pfn``/``efn``;
    ``None`` takes the architecture's default (its paper's input). ``n_global_features`` > 0 adds the
    ``global_features`` input fused after the backbone's pooling / flatten layer. See the module docstring for
    the common options and each ``build_<name>`` for the architecture options.
    """
    spec = info(name)
    n_classes = int(n_classes)
    if n_classes < 2:
        raise ValueError(
            f"n_classes={n_classes}: expected >= 2 (binary tasks use two softmax outputs, never one sigmoid)"
        )
    class_names = options.pop("class_names", None)
    if class_names is None:
        class_names = default_class_names(n_classes)
    class_names = [str(c) for c in class_names]
    if len(class_names) != n_classes:
        raise ValueError(f"class_names={class_names}: expected {n_classes} names, one per class")
    if len(set(class_names)) != n_classes:
        raise ValueError(f"class_names={class_names}: names must be unique")
    seed = options.pop("seed", None)
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    metadata = {
        "architecture": name,
        "n_classes": n_classes,
        "n_global_features": int(n_global_features),
        "input_kind": spec.input_kind,
        "seed": seed,
        "options": _jsonable(options),
    }
    model = spec.builder(
        n_classes,
        None if input_shape is None else tuple(input_shape),
        int(n_global_features),
        class_names=class_names,
        metadata=metadata,
        **options,
    )
    # Record the resolved input shape (defaults depend on options, e.g. effnet_s presets).
    head = model.get_layer(OUTPUT_NAME)
    head.metadata["input_shape"] = [d for d in model.input[spec.input_kind].shape[1:]]
    return model


def model_class_names(model: keras.Model) -> list[str]:
    """Class names stored in a zoo model's output layer (survive ``.keras`` save/load)."""
    try:
        layer = model.get_layer(OUTPUT_NAME)
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer {OUTPUT_NAME!r}; not built by jettf.models") from None
    names = getattr(layer, "class_names", None)
    if names is None:
        return default_class_names(int(layer.output.shape[-1]))
    return list(names)


def model_metadata(model: keras.Model) -> dict:
    """The build record (architecture, options, resolved input shape, ...) stored with the model."""
    return dict(getattr(model.get_layer(OUTPUT_NAME), "metadata", {}) or {})


def adapt_normalization(model: keras.Model, global_features=None, image=None) -> keras.Model:
    """Adapt the model's ``Normalization`` layers to training data, in place; call before ``compile``.

    ``global_features`` ``[N, F]`` adapts ``"global_features_norm"`` (per-feature mean and variance);
    ``image`` ``[N, H, W, C]`` adapts the per-channel input normalization of models that have one
    (``effnet_s``: layer ``"image_norm"``). Arrays, ``tf.data`` datasets or iterables of batches are
    accepted, as by ``Normalization.adapt``.
    """
    pairs = [(global_features, GLOBAL_NORM_NAME), (image, "image_norm")]
    for values, layer_name in pairs:
        if values is None:
            continue
        try:
            layer = model.get_layer(layer_name)
        except ValueError:
            raise ValueError(f"model {model.name!r} has no layer {layer_name!r} to adapt") from None
        if getattr(layer, "input_mean", None) is not None:
            raise ValueError(f"layer {layer_name!r} was built with fixed mean/std; it cannot be adapted")
        if isinstance(values, np.ndarray):
            values = values.astype("float32", copy=False)
        layer.adapt(values)
    return model


from .flops import count_flops  # noqa: E402

# Architectures register themselves on import.
from . import calo_cnn, deeptop, effnet_s, ensemble, lenet, particle_flow, resnet15  # noqa: E402,F401,I001
