"""Grad-CAM (Selvaraju et al., arXiv:1610.02391) for the convolutional models of the zoo, as used in 000
section 4.2.2 (one heat map per branch of the ResNet50 + InceptionV3 ensemble).

For a class c with score y^c (by default the pre-softmax ``"logits"`` layer of a zoo model) and the feature maps
A^k of a convolutional layer, the map is

    L^c = ReLU( sum_k alpha_k^c A^k ),   alpha_k^c = mean over (i, j) of d y^c / d A^k_ij,

upsampled bilinearly to the input image size and, by default, divided by its maximum per jet (maps in [0, 1];
an all-zero map stays zero).

Which layer: by default the last layer with a 4-D (N, h, w, channels) output that comes after a convolution and
is not a pooling, dropout, padding, cropping, resizing or rescaling layer: the last convolution or the
activation / batch norm / add / concatenation right after it (ResNet50: ``conv5_block3_out``, InceptionV3:
``mixed10``, EffNet-S: ``top_activation``, LeNet: ``conv2``). Backbones nested as sub-models (the ensemble's
``resnet50`` and ``inception_v3``) are searched too, and each nested model that holds convolutions is one
*branch* with its own map. A layer can be named instead: ``"conv2"``, a path ``"resnet50/conv4_block6_out"``,
a list of them, or ``{branch: path}``.

Backends: TensorFlow (``tf.GradientTape``) and JAX (``jax.grad``); the graph surgery uses public Keras 3 APIs
only (``keras.models.clone_model`` with a ``call_function`` that replays nested models inline while sharing
every layer and weight). Other backends raise ``NotImplementedError``.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Mapping, Optional, Sequence, Union

import keras
import numpy as np

from jettf.models.layers import SeparableResize

__all__ = ["grad_cam", "GradCAM", "find_conv_layers"]

_CONV_TYPES = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
               keras.layers.Conv2DTranspose)
# 4-D layers that are not feature maps of their own (they move or thin out the maps of the layer before).
_NOT_FEATURE_MAPS = (
    keras.layers.MaxPooling2D, keras.layers.AveragePooling2D, keras.layers.Dropout, keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise, keras.layers.GaussianDropout, keras.layers.ZeroPadding2D, keras.layers.Cropping2D,
    keras.layers.Resizing, keras.layers.Rescaling, keras.layers.UpSampling2D, keras.layers.Normalization,
    SeparableResize,
)
_SUPPORTED_BACKENDS = ("tensorflow", "jax")


# ----------------------------------------------------------------------------- finding the layer


def _is_model(layer) -> bool:
    return isinstance(layer, keras.Model)


def _rank4(layer) -> bool:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError, RuntimeError):
        return False
    return len(shape) == 4


def _last_feature_map(model) -> Optional[str]:
    # The towers of second images (calo_cnn's "hcal_block1_conv1", ...: named after their input) see another
    # grid than the "image" the maps are drawn on: left out.
    names = [t.name.split(":")[0] for t in model.inputs]
    others = tuple(f"{name}_" for name in names if name not in ("image", "global_features"))
    seen_conv, last = False, None
    for layer in model.layers:
        if _is_model(layer) or (others and layer.name.startswith(others)):
            continue
        seen_conv = seen_conv or isinstance(layer, _CONV_TYPES)
        if seen_conv and _rank4(layer) and not isinstance(layer, _NOT_FEATURE_MAPS):
            last = layer.name
    return last


def find_conv_layers(model) -> dict:
    """``{branch: layer path}``: the layer Grad-CAM uses in each branch (module docstring).

    Nested models holding convolutions are branches named after the nested model; the model's own layers form
    a branch named after the model. Raises ``ValueError`` when the model has no convolution.
    """
    branches = {}
    for layer in model.layers:
        if _is_model(layer):
            try:
                inner = find_conv_layers(layer)
            except ValueError:
                continue
            for branch, path in inner.items():
                key = layer.name if branch == layer.name else f"{layer.name}/{branch}"
                branches[key] = f"{layer.name}/{path}"
    own = _last_feature_map(model)
    if own is not None:
        branches[model.name] = own
    if not branches:
        raise ValueError(f"model {model.name!r}: no convolutional layer found for Grad-CAM (it needs a 4-D feature "
                         f"map after a Conv2D/DepthwiseConv2D/SeparableConv2D); pass layers= to name one")
    return branches


def _find_path(model, name: str) -> Optional[tuple]:
    """Path (tuple of layer names) to the first layer called ``name``, searching nested models depth-first."""
    for layer in model.layers:
        if layer.name == name:
            return (name,)
    for layer in model.layers:
        if _is_model(layer):
            inner = _find_path(layer, name)
            if inner is not None:
                return (layer.name,) + inner
    return None


def _resolve_path(model, path: str) -> tuple:
    parts = tuple(p for p in str(path).split("/") if p)
    if len(parts) == 1:
        found = _find_path(model, parts[0])
        if found is None:
            raise ValueError(f"model {model.name!r}: no layer named {parts[0]!r} (nested models searched too)")
        parts = found
    current = model
    for i, part in enumerate(parts):
        try:
            layer = current.get_layer(part)
        except ValueError:
            where = "/".join(parts[:i + 1])
            raise ValueError(f"model {model.name!r}: no layer {where!r} in layer path {path!r}") from None
        if i < len(parts) - 1 and not _is_model(layer):
            raise ValueError(f"model {model.name!r}: {'/'.join(parts[:i + 1])!r} is not a nested model (path {path!r})")
        current = layer
    if not _rank4(current):
        raise ValueError(f"model {model.name!r}: layer {'/'.join(parts)!r} does not output a 4-D feature map "
                         f"(N, h, w, channels); Grad-CAM needs one")
    return parts


def _targets(model, layers) -> dict:
    """``{branch: path tuple}`` from the ``layers`` argument."""
    if layers is None:
        named = find_conv_layers(model)
    elif isinstance(layers, str):
        named = {None: layers}
    elif isinstance(layers, Mapping):
        named = dict(layers)
    else:
        named = {None: p for p in layers} if len(layers) == 1 else {str(p): p for p in layers}
    out = {}
    for branch, path in named.items():
        parts = _resolve_path(model, path)
        if branch is None:
            branch = parts[0] if len(parts) > 1 else model.name
        out[str(branch)] = parts
    return out


# ----------------------------------------------------------------------------- graph surgery


def _identity(layer):
    return layer


def _producer(model, tensor):
    """The layer of ``model`` whose (first-call) output is ``tensor``."""
    for layer in model.layers:
        try:
            outputs = keras.tree.flatten(layer.output)
        except (AttributeError, ValueError, RuntimeError):
            continue
        for i, t in enumerate(outputs):
            if t is tensor:
                return layer, i
    raise ValueError(f"model {model.name!r}: cannot find the layer that produces output {tensor.name!r}")


class _Alias(keras.layers.Layer):
    """A uniquely named stand-in for a layer of a nested model: calls that layer (same weights) unchanged.

    Inlining nested models puts their layers in one graph, where names must be unique (ResNet50 and InceptionV3
    could share one); the alias carries the path-derived name.
    """

    def __init__(self, layer, name):
        super().__init__(name=name, dtype=layer.dtype_policy, autocast=False, trainable=layer.trainable)
        self.layer = layer
        self.built = True

    def call(self, *args, **kwargs):
        return self.layer(*args, **kwargs)

    def compute_output_spec(self, *args, **kwargs):
        return self.layer.compute_output_spec(*args, **kwargs)


def _replay(model):
    """Rebuild ``model``'s graph on new inputs with every nested model inlined, sharing all layers and weights.

    Returns ``(inputs, tensors, outputs)``: the new input structure, ``{path tuple: output tensor}`` for every
    layer call, nested ones included (so inner feature maps and the final score live in one graph), and the
    model's outputs in that graph.
    """
    tensors = {}

    def call_function(prefix):
        def call(layer, *args, **kwargs):
            path = prefix + (layer.name,)
            if isinstance(layer, keras.Sequential):
                out = args[0]
                inner = call_function(path)
                for sub in layer.layers:
                    out = inner(sub, out)
            elif _is_model(layer):
                keras.models.clone_model(layer, input_tensors=args[0], clone_function=_identity,
                                         call_function=call_function(path))
                outs = []
                for tensor in layer.outputs:
                    producer, index = _producer(layer, tensor)
                    outs.append(keras.tree.flatten(tensors[path + (producer.name,)])[index])
                out = outs[0] if len(outs) == 1 else outs
            elif prefix:
                out = _Alias(layer, "__".join(("gradcam",) + path))(*args, **kwargs)
            else:
                out = layer(*args, **kwargs)
            tensors[path] = out
            return out

        return call

    with warnings.catch_warnings():
        # Inlining a nested model whose input is a dict names the new tensors differently; Keras warns, harmlessly.
        warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")
        flat = keras.models.clone_model(model, clone_function=_identity, call_function=call_function(()))
    return flat.input, tensors, flat.outputs


def _explainer(model, targets: dict, score_layer: Optional[str]):
    inputs, tensors, outputs = _replay(model)
    if score_layer is not None:
        key = _find_path(model, score_layer)
        if key is None or key not in tensors:
            raise ValueError(f"model {model.name!r}: no layer {score_layer!r} to take class scores from "
                             f"(score_layer=None uses the model output)")
        score = tensors[key]
    else:
        if len(outputs) != 1:
            raise ValueError(f"model {model.name!r} has {len(outputs)} outputs; name the score layer (score_layer=)")
        score = outputs[0]
    maps = [tensors[p] for p in targets.values()]
    leaves = keras.tree.flatten(inputs)
    forward = keras.Model(inputs, maps + [score], name=f"{model.name}_gradcam_forward")
    head = keras.Model(maps + leaves, score, name=f"{model.name}_gradcam_head")
    return forward, head, inputs


# ----------------------------------------------------------------------------- gradients


def _gradients(head, maps: list, feeds: list, classes: Sequence[int]) -> list:
    """``[class][map]`` arrays of d sum_n score[n, c] / d maps (per jet, since jets do not interact)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        a = [tf.convert_to_tensor(m) for m in maps]
        f = [tf.convert_to_tensor(x) for x in feeds]
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(a)
            score = tf.cast(head(a + f, training=False), tf.float32)
            targets = [tf.reduce_sum(score[:, c]) for c in classes]
        grads = [[np.asarray(g, dtype=np.float32) for g in tape.gradient(t, a)] for t in targets]
        del tape
        return grads
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        f = [jnp.asarray(x) for x in feeds]

        def total(a, c):
            return jnp.sum(jnp.asarray(head(list(a) + f, training=False), jnp.float32)[:, c])

        grad = jax.grad(total)
        a = [jnp.asarray(m) for m in maps]
        return [[np.asarray(g, dtype=np.float32) for g in grad(a, c)] for c in classes]
    raise NotImplementedError(f"grad_cam: Keras backend {backend!r} is not supported; use one of {_SUPPORTED_BACKENDS}")


# ----------------------------------------------------------------------------- public API


@dataclasses.dataclass
class GradCAM:
    """Grad-CAM maps of N jets.

    ``maps[branch]``: float32 ``[N, K, H, W]`` at the prepared image's size (the input image's for a model
    without an :class:`jettf.images.ImagePreparation`) (K = ``classes``; in [0, 1] per jet when
    normalized); ``coarse[branch]``: ``[N, K, h, w]`` at the feature-map size, after the ReLU, not normalized;
    ``layers[branch]``: the layer path; ``scores``: ``[N, n_out]`` class scores (logits by default).
    """

    maps: dict
    coarse: dict
    layers: dict
    classes: list
    class_names: Optional[list]
    scores: np.ndarray

    @property
    def branches(self) -> list:
        return list(self.maps)

    def mean_map(self, branch: str, class_index: int, jets=None) -> np.ndarray:
        """Average ``[H, W]`` map of ``class_index`` over ``jets`` (an index or mask; default all)."""
        k = self.classes.index(class_index)
        m = self.maps[branch][:, k]
        return (m if jets is None else m[jets]).mean(axis=0)

    def class_means(self, labels) -> dict:
        """``{branch: {class name: [H, W]}}``: for each class c, the map of c averaged over the jets labelled c
        (what :func:`jettf.explain.plots.plot_gradcam` draws). Classes without jets are left out."""
        labels = np.asarray(labels)
        out = {}
        for branch in self.maps:
            out[branch] = {}
            for c in self.classes:
                if np.any(labels == c):
                    name = self.class_names[c] if self.class_names is not None else f"class {c}"
                    out[branch][name] = self.mean_map(branch, c, labels == c)
        return out


def _as_inputs(model, inputs) -> dict:
    structure = model.input
    if isinstance(inputs, Mapping):
        if isinstance(structure, Mapping):
            missing = sorted(set(structure) - set(inputs))
            if missing:
                raise ValueError(f"model {model.name!r} needs input(s) {missing}; got {sorted(inputs)}")
            return {k: inputs[k] for k in structure}
        return dict(inputs)
    if isinstance(structure, Mapping):
        if "image" not in structure:
            raise ValueError(f"model {model.name!r}: inputs are a bare array but the model takes {sorted(structure)}")
        extra = sorted(set(structure) - {"image"})
        if extra:
            raise ValueError(f"model {model.name!r} also needs {extra}; pass inputs as a dict")
        return {"image": inputs}
    return inputs


def _image_size(model, inputs) -> tuple:
    """The size maps are drawn at: the prepared image the convolutions see (a tagger's ImagePreparation output,
    e.g. cropped 40 -> 32), else the input image."""
    image = inputs["image"] if isinstance(inputs, Mapping) else keras.tree.flatten(inputs)[0]
    shape = np.shape(image)
    if len(shape) != 4:
        raise ValueError(f"grad_cam: expected images [N, H, W, C], got shape {shape}")
    path = _find_path(model, "image_preparation")
    if path is not None:
        layer = model
        for name in path:
            layer = layer.get_layer(name)
        return tuple(int(d) for d in layer.output_image_shape[:2])
    return int(shape[1]), int(shape[2])


def grad_cam(
    model,
    inputs,
    class_index: Union[None, int, Sequence[int]] = None,
    *,
    layers=None,
    score_layer: Optional[str] = "logits",
    normalize: bool = True,
    batch_size: int = 32,
    class_names: Optional[Sequence[str]] = None,
) -> GradCAM:
    """Grad-CAM maps of ``model`` on ``inputs`` (images ``[N, H, W, C]`` or the model's input dict).

    ``class_index``: one class, a list, or ``None`` (every class). ``layers``: ``None`` (automatic, one map per
    branch), a layer name or path, a list, or ``{branch: path}`` (module docstring). ``score_layer``: the
    layer whose output is the class score (``"logits"`` in the zoo; falls back to the model output when the
    model has no such layer, nested models searched; ``None`` = the model output). ``batch_size`` jets go through the model at a time.
    """
    if isinstance(model, keras.Sequential):  # as a functional model (clone_model's call_function needs one)
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    inputs = _as_inputs(model, inputs)
    height, width = _image_size(model, inputs)
    targets = _targets(model, layers)
    if score_layer is not None and _find_path(model, score_layer) is None:
        score_layer = None  # not a zoo model: use its output
    forward, head, structure = _explainer(model, targets, score_layer)
    data = [np.asarray(x) for x in keras.tree.flatten(inputs)]
    if len(data) != len(keras.tree.flatten(structure)):
        raise ValueError(f"grad_cam: model {model.name!r} takes {len(keras.tree.flatten(structure))} input(s), "
                         f"got {len(data)}")
    n = data[0].shape[0]
    n_out = int(forward.outputs[-1].shape[-1])
    classes = list(range(n_out)) if class_index is None else [int(c) for c in np.atleast_1d(class_index)]
    if any(not 0 <= c < n_out for c in classes):
        raise ValueError(f"grad_cam: class_index {classes} out of range for {n_out} classes")
    coarse = {b: [] for b in targets}
    scores = []
    for start in range(0, n, batch_size):
        feeds = [x[start:start + batch_size] for x in data]
        outs = forward(keras.tree.pack_sequence_as(structure, feeds), training=False)
        outs = [np.asarray(keras.ops.convert_to_numpy(o), dtype=np.float32) for o in outs]
        maps, score = outs[:-1], outs[-1]
        scores.append(score)
        grads = _gradients(head, maps, feeds, classes)
        for m, branch in enumerate(targets):
            per_class = []
            for k in range(len(classes)):
                weights = grads[k][m].mean(axis=(1, 2))  # [N, channels]
                per_class.append(np.maximum(np.einsum("nhwc,nc->nhw", maps[m], weights), 0.0))
            coarse[branch].append(np.stack(per_class, axis=1))
    coarse = {b: np.concatenate(v).astype(np.float32) for b, v in coarse.items()}
    upsampled = {}
    for branch, c in coarse.items():
        nk, h, w = c.shape[0] * c.shape[1], c.shape[2], c.shape[3]
        flat = c.reshape(nk, h, w, 1)
        if (h, w) != (height, width):
            flat = keras.ops.convert_to_numpy(
                keras.ops.image.resize(flat, (height, width), interpolation="bilinear")
            )
        maps = np.maximum(np.asarray(flat, dtype=np.float32).reshape(c.shape[0], c.shape[1], height, width), 0.0)
        if normalize:
            top = maps.max(axis=(2, 3), keepdims=True)
            maps = np.divide(maps, top, out=np.zeros_like(maps), where=top > 0)
        upsampled[branch] = maps
    return GradCAM(
        maps=upsampled,
        coarse=coarse,
        layers={b: "/".join(p) for b, p in targets.items()},
        classes=classes,
        class_names=None if class_names is None else [str(c) for c in class_names],
        scores=np.concatenate(scores),
    )
