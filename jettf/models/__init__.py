"""The Keras 3 model zoo: image taggers, Deep-Sets baselines, one registry.

    >>> import jettf.models as zoo
    >>> zoo.available()
    ['calo_cnn', 'deeptop', 'dense', 'effnet_s', 'efn', 'ensemble', 'lenet', 'pfn', 'resnet15']
    >>> model = zoo.build("effnet_s", 2, input_shape=(28, 28, 3), preset="S0", class_names=["qcd", "top"])
    >>> zoo.model_class_names(model)
    ['qcd', 'top']

Contract (see CONTRIBUTING.md): a model takes a dict with ``image`` ``[N, H, W, C]`` (or ``constituents``
``[N, M, 4]`` of pt, eta, phi, energy for ``pfn``/``efn``), any second images of another granularity by name
(``calo_cnn``'s ``extra_images``, e.g. 004's ``hcal`` ``[N, 8, 8, 1]``) and, when ``n_global_features > 0``,
``global_features`` ``[N, F]``; it returns float32 softmax probabilities ``[N, n_classes]`` from a layer named
``"probabilities"`` (the pre-softmax Dense is ``"logits"``). Binary tasks use two classes. Global features are
standardized inside the model by a ``Normalization`` layer named ``"global_features_norm"``: call
``adapt_normalization(model, global_features=train_values)`` before compiling, or pass ``global_mean=`` and
``global_std=`` to ``build``.

Common ``build`` options: ``class_names`` (length n_classes; stored in the model and kept by ``.keras``
save/load), ``feature_names`` (the global features' column names, stored likewise), ``seed`` (calls
``keras.utils.set_random_seed(seed)`` before building, so the same seed gives the same initial weights; note
this also seeds Python, numpy and the backend globally), ``name`` (model name), ``global_mean``/``global_std``.
Architecture options are documented in each module's ``build_*`` function.

Jet taggers: ``build(..., preparation=ImagePreparation(...), flips="both")`` puts the image preparation layer
(:class:`jettf.images.ImagePreparation`: densify, standardize, crop, colormap, resize) and 002's random flips
(Keras ``RandomFlip`` layers named ``flip_eta`` / ``flip_phi``, active only in training) in front of the
architecture. The model then takes the rendered image ``[N, npix, npix, C]`` in physical units (the
ImageSpec's) and carries everything it needs to read it::

    >>> prep = ImagePreparation.from_dataset(info, standardize=True, crop=0.8)
    >>> tagger = zoo.build("effnet_s", 2, preparation=prep, flips="both", preset="S0")

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

from .heads import GLOBAL_NORM_NAME, LOGITS_NAME, OUTPUT_NAME, PARTICLE_NORM_NAME, default_class_names

__all__ = [
    "build",
    "find_layer",
    "architecture",
    "count_params",
    "FLIP_MODES",
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
    "PARTICLE_NORM_NAME",
]


@dataclass(frozen=True)
class ModelInfo:
    """A registry entry: the builder and what the model eats."""

    name: str
    builder: Callable[..., keras.Model]
    input_kind: str  # "image", "constituents" or "features" (global_features only)
    paper: str  # where the architecture comes from
    description: str


_REGISTRY: dict[str, ModelInfo] = {}
#: What a model reads: an image, constituents, or only ``global_features`` (``dense``).
INPUT_KINDS = ("image", "constituents", "features")

#: Random flips (002 section 2.2: along eta, phi or both, each axis independently with probability 1/2).
FLIP_MODES = {None: (), "none": (), "eta": ("eta",), "phi": ("phi",), "both": ("eta", "phi")}
#: Keras RandomFlip modes: image axis 1 (rows) is eta ("vertical"), axis 2 (columns) is phi ("horizontal").
_FLIP_LAYERS = {"eta": "vertical", "phi": "horizontal"}


def register(name: str, builder: Callable[..., keras.Model], *, input_kind="image", paper="", description=""):
    """Add a builder ``builder(n_classes, input_shape, n_global_features, *, class_names, metadata, **options)``."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"register({name!r}): input_kind={input_kind!r}; expected one of {INPUT_KINDS}")
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


def build(name: str, n_classes: int, input_shape=None, n_global_features: int = 0, *, preparation=None,
          flips=None, extra_preparations=None, **options) -> keras.Model:
    """Build the registered model ``name`` with a softmax over ``n_classes`` (>= 2; binary = 2).

    ``input_shape`` excludes the batch axis: ``(H, W, C)`` for image models, ``(M, 4)`` for ``pfn``/``efn``;
    ``None`` takes the architecture's default (its paper's input), or the prepared image's shape when a
    ``preparation`` layer is given. ``n_global_features`` > 0 adds the ``global_features`` input fused after
    the backbone's pooling / flatten layer. ``preparation`` (an :class:`jettf.images.ImagePreparation`) and
    ``flips`` (``"eta"``, ``"phi"``, ``"both"``) make a tagger that takes rendered images (module docstring).
    ``extra_preparations`` (``{name: ImagePreparation}``) do the same for the second images of models built with
    ``extra_images`` (``calo_cnn``: 004's HCAL image beside the ECAL one); random flips cannot be combined with
    them (each image would be flipped at random on its own).
    See the module docstring for the common options and each ``build_<name>`` for the architecture options.
    """
    spec = info(name)
    if flips not in FLIP_MODES:
        raise ValueError(f"flips={flips!r}: expected one of {[m for m in FLIP_MODES if m]} or None")
    if (preparation is not None or FLIP_MODES[flips]) and spec.input_kind != "image":
        raise ValueError(f"model {name!r} takes {spec.input_kind}; preparation= and flips= are for image models")
    extra_preparations = dict(extra_preparations or {})
    if extra_preparations and FLIP_MODES[flips]:
        raise ValueError(f"flips={flips!r} with second images {sorted(extra_preparations)}: each image would be "
                         "flipped at random on its own, breaking their alignment; use flips=None")
    if preparation is not None:
        prepared = tuple(preparation.output_image_shape)
        if input_shape is not None and tuple(input_shape) != prepared:
            raise ValueError(f"input_shape={tuple(input_shape)} differs from the prepared image's {prepared}")
        input_shape = prepared
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
    feature_names = options.pop("feature_names", None)
    if feature_names is not None and len(feature_names) != int(n_global_features):
        raise ValueError(f"feature_names: {len(feature_names)} names for n_global_features={n_global_features}")
    seed = options.pop("seed", None)
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    metadata = {
        "architecture": name,
        "n_classes": n_classes,
        "n_global_features": int(n_global_features),
        "feature_names": None if feature_names is None else [str(f) for f in feature_names],
        "input_kind": spec.input_kind,
        "seed": seed,
        "options": _jsonable(options),
        "preparation": None if preparation is None else _jsonable(preparation.describe()),
        "extra_preparations": {k: _jsonable(p.describe()) for k, p in extra_preparations.items()} or None,
        "flips": FLIP_MODES[flips],
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
    key = "global_features" if spec.input_kind == "features" else spec.input_kind
    head.metadata["input_shape"] = [d for d in model.input[key].shape[1:]]
    if preparation is None and not FLIP_MODES[flips] and not extra_preparations:
        return model
    return _tagger(model, preparation, FLIP_MODES[flips], int(n_global_features), seed, extra_preparations)


def _tagger(model: keras.Model, preparation, flips, n_global_features: int, seed, extra_preparations) -> keras.Model:
    """``model`` behind the preparation layers and random flips: it takes the rendered images."""
    from .heads import make_inputs

    raw_shape = preparation.input_shape_dense if preparation is not None else model.input["image"].shape[1:]
    inputs = make_inputs(raw_shape, n_global_features, kind="image")
    x = inputs["image"] if preparation is None else preparation(inputs["image"])
    for i, axis in enumerate(flips):
        x = keras.layers.RandomFlip(_FLIP_LAYERS[axis], seed=None if seed is None else int(seed) + i,
                                    name=f"flip_{axis}")(x)
    feeds = {**inputs, "image": x}
    for name, prep in extra_preparations.items():
        inputs[name] = keras.Input(prep.input_shape_dense, name=name, dtype="float32")
        feeds[name] = prep(inputs[name])
    return keras.Model(inputs, model(feeds), name=f"{model.name}_tagger")


def find_layer(model: keras.Model, name: str):
    """The first layer called ``name`` in ``model`` or its nested models (depth-first), or ``ValueError``."""
    for layer in model.layers:
        if layer.name == name:
            return layer
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            try:
                return find_layer(layer, name)
            except ValueError:
                continue
    raise ValueError(f"model {model.name!r} has no layer {name!r}")


def architecture(model: keras.Model) -> keras.Model:
    """The architecture inside a tagger (the model itself when it has no preparation in front)."""
    if any(layer.name == OUTPUT_NAME for layer in model.layers):
        return model
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    found = [m for m in inner if any(layer.name == OUTPUT_NAME for layer in m.layers)]
    if len(found) != 1:
        raise ValueError(f"model {model.name!r}: expected one zoo architecture inside, found {[m.name for m in found]}")
    return found[0]


def count_params(model: keras.Model) -> int:
    """Parameters of the architecture, as the papers count them (Keras' count: BatchNorm statistics included;
    the image preparation's mean/std images and flips left out)."""
    return int(architecture(model).count_params())


def model_class_names(model: keras.Model) -> list[str]:
    """Class names stored in a zoo model's output layer (survive ``.keras`` save/load)."""
    try:
        layer = find_layer(model, OUTPUT_NAME)
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer {OUTPUT_NAME!r}; not built by jettf.models") from None
    names = getattr(layer, "class_names", None)
    if names is None:
        return default_class_names(int(layer.output.shape[-1]))
    return list(names)


def model_metadata(model: keras.Model) -> dict:
    """The build record (architecture, options, resolved input shape, ...) stored with the model."""
    return dict(getattr(find_layer(model, OUTPUT_NAME), "metadata", {}) or {})


def adapt_normalization(model: keras.Model, global_features=None, image=None, constituents=None) -> keras.Model:
    """Adapt the model's ``Normalization`` layers to training data, in place; call before ``compile``.

    ``global_features`` ``[N, F]`` adapts ``"global_features_norm"`` (per-feature mean and variance);
    ``image`` ``[N, H, W, C]`` adapts the per-channel input normalization of models that have one
    (``effnet_s``: layer ``"image_norm"``). Arrays, ``tf.data`` datasets or iterables of batches are
    accepted, as by ``Normalization.adapt``. ``constituents`` ``[N, M, 4]`` (an array, or an iterable of such
    batches) adapts the ``"constituents_norm"`` of a ``pfn`` with ``particle_features="linear"`` to the
    features of the real (pt > 0) particles only, so that the zero padding does not pull the mean.
    """
    pairs = [(global_features, GLOBAL_NORM_NAME), (image, "image_norm"), (constituents, PARTICLE_NORM_NAME)]
    for values, layer_name in pairs:
        if values is None:
            continue
        try:
            layer = find_layer(model, layer_name)
        except ValueError:
            raise ValueError(f"model {model.name!r} has no layer {layer_name!r} to adapt") from None
        if getattr(layer, "input_mean", None) is not None:
            raise ValueError(f"layer {layer_name!r} was built with fixed mean/std; it cannot be adapted")
        if layer_name == PARTICLE_NORM_NAME:
            values = _real_particle_features(model, values)[None]  # one "jet" of all real particles: [1, n, K]
        elif isinstance(values, np.ndarray):
            values = values.astype("float32", copy=False)
        layer.adapt(values)
    return model


def _real_particle_features(model: keras.Model, constituents, chunk: int = 4096) -> np.ndarray:
    """``[n_real, K]``: the per-particle features the model's ``pfn_inputs`` layer makes of the real particles
    of ``constituents`` (an array, or an iterable of batches)."""
    features = find_layer(model, "pfn_inputs")
    if isinstance(constituents, np.ndarray):
        array = constituents
        constituents = (array[start:start + chunk] for start in range(0, len(array), chunk))
    parts = []
    for batch in constituents:
        mask, values = features(np.asarray(batch, np.float32))
        mask, values = keras.ops.convert_to_numpy(mask), keras.ops.convert_to_numpy(values)
        parts.append(values[mask > 0])
    return np.concatenate(parts).astype("float32")


from .flops import count_flops  # noqa: E402

# Architectures register themselves on import.
from . import calo_cnn, deeptop, dense, effnet_s, ensemble, lenet, particle_flow, resnet15  # noqa: E402,F401,I001
