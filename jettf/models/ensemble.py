"""ResNet50 + InceptionV3 ensemble of 000 (Bassa et al., "Jet Image Tagging Using Deep Learning: An Ensemble
Model", Sec. 3.1 and Fig. 2).

One jet-image input (299 x 299 x 3 in the paper). Two ``keras.applications`` backbones with
``include_top=False`` and global average pooling run side by side:

* ResNet50 on the image resized to 224 x 224 inside the model (bilinear with antialiasing, so sparse deposits
  are averaged rather than skipped), after ResNet50's own ``preprocess_input`` ("caffe": RGB->BGR, minus the
  ImageNet mean pixel) -> 2048 features;
* InceptionV3 on the 299 x 299 image after its ``preprocess_input`` ("tf": [0, 255] -> [-1, 1]) -> 2048.

The pooled features are concatenated (2048 + 2048; 000's "1024-dimensional" ResNet50 vector is a misprint,
ResNet50's last stage has 2048 channels), optionally with the standardized global features, projected by a
512-unit fusion layer (ReLU, named ``"fusion"``), dropout, and a softmax over the classes.

Jet images hold pT fractions in [0, 1] while ImageNet backbones expect pixel values in [0, 255]: the model
multiplies by ``image_scale`` (default 255) before each backbone's preprocessing. One-channel images are
repeated to three channels.

Options
-------
``branches``: "both" (default), "resnet50" or "inception_v3". 000's component-wise ablation keeps the 512-unit
fusion layer for a single branch, and so does this builder.
``weights``: ``None`` (random init), ``"imagenet"``, a path to a local weights file, or a dict
``{"resnet50": ..., "inception_v3": ...}`` with one such value per backbone. ImageNet weights are fetched with
``keras.utils.get_file`` into Keras' cache (``$KERAS_HOME/models``, default ``~/.keras/models``, or
``weights_cache_dir``); offline, the build fails with an error naming the file to download and how to pass it.
A local file is anything ``Model.load_weights`` of the headless backbone accepts: Keras' official
``*_notop.h5`` files, or a ``.weights.h5`` saved from ``keras.applications.ResNet50(include_top=False)`` /
``InceptionV3(include_top=False)`` (weights do not depend on the input size).
``trainable_backbone_layers``: ``None`` (default: fine-tune everything, as 000 does), ``0`` (frozen backbones,
feature extraction; their batch norms run in inference mode), or ``k`` > 0 (only the last ``k`` layers of
each backbone train).
``resnet50_input_size`` (224; ``None`` = no resizing), ``image_scale`` (255), ``resize_interpolation``
("bilinear"), ``fusion_units`` (512), ``fusion_activation`` ("relu"), ``dropout`` (0.5, after the fusion
layer).

InceptionV3 needs inputs of at least 75 x 75, ResNet50 at least 32 x 32.
"""

from __future__ import annotations

import os

import keras

from . import register
from .heads import assemble, classifier_head, make_inputs
from .layers import ImagenetPreprocess, SeparableResize

__all__ = ["build_ensemble", "BACKBONES", "IMAGENET_FILES"]

#: branch -> (keras.applications constructor name, preprocess_input mode)
BACKBONES = {"resnet50": ("ResNet50", "caffe"), "inception_v3": ("InceptionV3", "tf")}
#: branch -> (file name, URL, md5) of Keras' headless ImageNet weights (as in keras.applications).
IMAGENET_FILES = {
    "resnet50": (
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626",
    ),
    "inception_v3": (
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "bcbd6486424b2319ff4ef7d526e38f63",
    ),
}
_BRANCHES = {"both": ("resnet50", "inception_v3"), "resnet50": ("resnet50",), "inception_v3": ("inception_v3",)}


def _keras_cache_dir(cache_dir=None) -> str:
    if cache_dir is not None:
        return os.fspath(cache_dir)
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def _fetch_imagenet(branch: str, cache_dir=None) -> str:
    fname, url, md5 = IMAGENET_FILES[branch]
    cache = _keras_cache_dir(cache_dir)
    try:
        return keras.utils.get_file(fname, url, file_hash=md5, cache_subdir="models", cache_dir=cache)
    except Exception as err:  # get_file raises a bare Exception on URL failures
        target = os.path.join(cache, "models", fname)
        raise RuntimeError(
            f"ensemble: weights='imagenet' for {BACKBONES[branch][0]}: could not download {url} ({err}). "
            f"This machine is probably offline. Download that file where the internet is reachable, then either "
            f"copy it to {target} (Keras' cache) or pass weights={{'{branch}': '/path/to/{fname}'}} to "
            f"jettf.models.build('ensemble', ...)."
        ) from err


def _resolve_weights(weights, branches, cache_dir) -> dict:
    """Per-branch weights: None, a local file path (checked), or a fetched ImageNet file path."""
    if isinstance(weights, dict):
        unknown = set(weights) - set(BACKBONES)
        if unknown:
            raise ValueError(f"ensemble: weights keys {sorted(unknown)}; expected 'resnet50' and/or 'inception_v3'")
        per_branch = {b: weights.get(b) for b in branches}
    else:
        if weights not in (None, "imagenet") and len(branches) > 1:
            raise ValueError(
                f"ensemble: weights={weights!r} is one file for two backbones; pass "
                "weights={'resnet50': path, 'inception_v3': path} (or None / 'imagenet')"
            )
        per_branch = {b: weights for b in branches}
    resolved = {}
    for b, w in per_branch.items():
        if w is None:
            resolved[b] = None
        elif isinstance(w, str) and w == "imagenet":
            resolved[b] = _fetch_imagenet(b, cache_dir)
        else:
            path = os.fspath(w)
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"ensemble: weights for {b}: {path} does not exist; expected a weights file of "
                    f"keras.applications.{BACKBONES[b][0]}(include_top=False) (.weights.h5, or Keras' *_notop.h5), "
                    f"or weights=None / 'imagenet'"
                )
            resolved[b] = path
    return resolved


def _set_trainable(backbone: keras.Model, trainable_layers):
    if trainable_layers is None:
        return
    k = int(trainable_layers)
    if k < 0:
        raise ValueError(f"ensemble: trainable_backbone_layers={k}; expected None, 0 or a positive count")
    if k == 0:
        backbone.trainable = False
        return
    backbone.trainable = True
    for layer in backbone.layers[:-k]:
        layer.trainable = False


def build_ensemble(
    n_classes: int,
    input_shape=None,
    n_global_features: int = 0,
    *,
    branches: str = "both",
    weights=None,
    weights_cache_dir=None,
    trainable_backbone_layers: int | None = None,
    resnet50_input_size: int | None = 224,
    image_scale: float = 255.0,
    resize_interpolation: str = "bilinear",
    fusion_units: int = 512,
    fusion_activation: str = "relu",
    dropout: float = 0.5,
    global_mean=None,
    global_std=None,
    class_names=None,
    metadata=None,
    name: str | None = None,
) -> keras.Model:
    """ResNet50 + InceptionV3 ensemble (default input (299, 299, 3)); options in the module docstring."""
    if branches not in _BRANCHES:
        raise ValueError(f"ensemble: branches={branches!r}; expected one of {', '.join(_BRANCHES)}")
    use = _BRANCHES[branches]
    if input_shape is None:
        input_shape = (299, 299, 3)
    h, w, c = (int(d) for d in input_shape)
    if c not in (1, 3):
        raise ValueError(f"ensemble: input_shape={tuple(input_shape)}; ImageNet backbones take 1 or 3 channels")
    if "inception_v3" in use and min(h, w) < 75:
        raise ValueError(f"ensemble: input_shape={tuple(input_shape)}; InceptionV3 needs at least 75 x 75")
    resolved = _resolve_weights(weights, use, weights_cache_dir)

    inputs = make_inputs(input_shape, n_global_features, kind="image")
    x = inputs["image"]
    if c == 1:
        x = keras.layers.Concatenate(axis=-1, name="to_rgb")([x, x, x])
    features = []
    for branch in use:
        cls_name, mode = BACKBONES[branch]
        y = x
        size = (h, w)
        if branch == "resnet50" and resnet50_input_size and (h, w) != (resnet50_input_size,) * 2:
            size = (int(resnet50_input_size),) * 2
            y = SeparableResize(*size, interpolation=resize_interpolation, antialias=True, name="resnet50_resize")(y)
        y = ImagenetPreprocess(mode, scale=image_scale, name=f"{branch}_preprocess")(y)
        backbone = getattr(keras.applications, cls_name)(
            include_top=False, weights=resolved[branch], input_shape=(*size, 3), pooling="avg", name=branch
        )
        _set_trainable(backbone, trainable_backbone_layers)
        features.append(backbone(y))
    probs = classifier_head(
        features,
        inputs,
        n_classes,
        mlp_units=(int(fusion_units),),
        mlp_activation=fusion_activation,
        dropout=dropout,
        mlp_prefix="fusion",
        global_mean=global_mean,
        global_std=global_std,
        class_names=class_names,
        metadata=metadata,
    )
    default_name = "ensemble" if branches == "both" else f"ensemble_{branches}"
    return assemble(inputs, probs, name or default_name)


register(
    "ensemble",
    build_ensemble,
    paper="000 (Bassa et al.), ResNet50 + InceptionV3 ensemble",
    description="ResNet50 (224) + InceptionV3 (299) from keras.applications, fused by Dense 512",
)
