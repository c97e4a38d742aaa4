"""The tf.data input pipeline: TFRecords -> ``(inputs, label)`` batches ready for a model.

Stages, all vectorized per batch::

    file shards (TFDS split slicing) --interleave(parallel)--> serialized records
      [--filter classes] [--cache] [--shuffle] --batch--> parse_example (one op per batch)
      --> image: densify (host) | sparse + flip flags (device)  --> prefetch

Image preparation follows 002 (section 2.2): per-pixel standardization with
the training split's mean and std images, centre crop (35 -> 28, 40 -> 32),
then random flips in eta, phi or both (training only; an augmentation, as
the paper's flip layer inside the network). For ImageNet backbones
single-channel images become 3 channels (replicated, or through a colormap
with per-image min-max scaling as ``matplotlib.pyplot.imshow`` renders the
ensemble's images, 000), and can be resized to the backbone's input size.

``densify="host"`` does all of that in the pipeline and hands the model dense
``image`` batches. ``densify="device"`` hands it the padded sparse pixels
(``image_index``, ``image_values``) and per-example flip flags
(``image_flips``), and :class:`jettf.data.SparseImagePrep` (the first layer,
see :func:`jettf.data.wrap_model`) does the same arithmetic on the
accelerator; 299x299x3 images are 1 MB each dense and ~0.5 kB sparse.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from jettf.data import records
from jettf.data.info import JetDatasetInfo, _instructions_dataset, load_info

__all__ = ["ImagePrep", "image_prep", "make_dataset", "num_examples", "colormap_table", "accelerator_present", "FLIP_MODES",
           "INPUT_KEYS"]

#: Flip modes: which image axes may be reversed (each with probability 1/2, independently).
FLIP_MODES = {None: (False, False), "none": (False, False), "eta": (True, False), "phi": (False, True),
              "both": (True, True)}
#: Inputs a model may ask for.
INPUT_KEYS = ("image", "global_features", "constituents", "jet", "pid")


def accelerator_present() -> bool:
    """Whether the Keras backend sees a GPU or TPU (``densify="auto"`` then densifies on it).

    Measured (benchmarks/bench_pipeline.py, benchmarks/README.md): on 2 host cores the dense
    host pipeline gives ~7-20k jets/s at 40x40x3 and ~0.3-2k jets/s at 299x299x3, below what
    a GPU consumes (84k img/s EffNet-S S0, 1.8k img/s for the ensemble), while the sparse
    pipeline gives ~80-150k jets/s and the densify layer is negligible work for a GPU. On a
    CPU-only machine the layer would run inside the training step on the same cores, where
    the parallel host pipeline is faster, so ``auto`` keeps ``host`` there.
    """
    import keras

    backend = keras.config.backend()
    try:
        if backend == "jax":
            import jax

            return any(d.platform != "cpu" for d in jax.devices())
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))
    except Exception:  # noqa: BLE001 - a backend that cannot list devices has no accelerator for us
        return False


def colormap_table(name: str = "viridis", n: int = 256) -> np.ndarray:
    """RGB lookup table ``[n, 3]`` float32 in [0, 1] of a matplotlib colormap."""
    import matplotlib

    return np.asarray(matplotlib.colormaps[name](np.linspace(0.0, 1.0, n))[:, :3], dtype=np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class ImagePrep:
    """How stored sparse images become the model's ``image`` input.

    Attributes:
        npix, n_channels: the stored image (ImageSpec).
        standardize: subtract ``mean`` and divide by ``std`` per pixel (002); pixels
            never filled in training (std 0) are divided by 1.
        crop: centre-crop side after standardization, or None.
        to_rgb: None, ``"replicate"`` or ``"colormap"`` (single-channel images only).
        colormap: matplotlib colormap name for ``to_rgb="colormap"``.
        resize: output side (bilinear), or None.
        densify: ``"host"`` (tf.data) or ``"device"`` (:class:`SparseImagePrep` in the model).
        max_pixels: static length of the padded sparse pixel lists (device mode).
        mean, std: float32 ``[npix, npix, C]`` (``std`` already made safe), or None.
    """

    npix: int
    n_channels: int
    standardize: bool = False
    crop: Optional[int] = None
    to_rgb: Optional[str] = None
    colormap: str = "viridis"
    resize: Optional[int] = None
    densify: str = "host"
    max_pixels: int = 0
    mean: Optional[np.ndarray] = None
    std: Optional[np.ndarray] = None

    @property
    def output_shape(self) -> Tuple[int, int, int]:
        side = self.resize or self.crop or self.npix
        channels = 3 if self.to_rgb else self.n_channels
        return (side, side, channels)

    def describe(self) -> dict:
        """JSON-able description (no arrays), for run configs."""
        return {k: getattr(self, k) for k in ("npix", "n_channels", "standardize", "crop", "to_rgb", "colormap",
                                              "resize", "densify", "max_pixels")}


def image_prep(info: JetDatasetInfo, *, standardize: bool = False, crop: Union[None, bool, int] = None,
               to_rgb: Optional[str] = None, colormap: str = "viridis", resize: Optional[int] = None,
               densify: str = "auto") -> ImagePrep:
    """Resolve image options against a dataset.

    Args:
        crop: ``True`` uses the ImageSpec's crop (002: 35 -> 28, 40 -> 32), an int
            that side, ``None``/``False`` none.
        to_rgb: ``"replicate"`` or ``"colormap"`` turn 1-channel images into 3; a
            3-channel image is left as it is.
        densify: ``"host"`` (dense images from tf.data), ``"device"`` (sparse pixels; the
            model's first layer densifies, see :func:`jettf.data.wrap_model`) or ``"auto"``:
            ``device`` when the Keras backend sees an accelerator, else ``host``
            (:func:`accelerator_present` has the measurements behind it).
    """
    spec = info.image_spec
    if crop is True:
        if spec.crop is None:
            raise ValueError(f"{info.name}: crop=True but its ImageSpec has no crop; pass the side as an int")
        crop = spec.crop
    crop = None if crop is False else crop
    if crop is not None and not 1 <= int(crop) <= spec.npix:
        raise ValueError(f"crop must be in [1, {spec.npix}] for {spec.npix}x{spec.npix} images, got {crop}")
    if to_rgb not in (None, "replicate", "colormap"):
        raise ValueError(f"to_rgb must be None, 'replicate' or 'colormap', got {to_rgb!r}")
    if to_rgb and spec.n_channels == 3:
        to_rgb = None  # already three channels
    elif to_rgb and spec.n_channels != 1:
        raise ValueError(f"to_rgb converts 1-channel images; {info.name} has {spec.n_channels} channels")
    mean = std = None
    if standardize:
        if "pixel_mean" not in info.metadata:
            raise ValueError(f"{info.name}: no pixel_mean/pixel_std in the metadata; rebuild the dataset")
        mean, std = info.pixel_mean, info.pixel_std
        std = np.where(std > 0, std, 1.0).astype(np.float32)
    prep = ImagePrep(npix=spec.npix, n_channels=spec.n_channels, standardize=bool(standardize),
                     crop=None if crop is None else int(crop), to_rgb=to_rgb, colormap=colormap,
                     resize=None if resize is None else int(resize), densify="host",
                     max_pixels=int(info.metadata.get("max_pixels") or info.layout.max_constituents),
                     mean=mean, std=std)
    if densify == "auto":
        densify = "device" if accelerator_present() else "host"
    if densify not in ("host", "device"):
        raise ValueError(f"densify must be 'host', 'device' or 'auto', got {densify!r}")
    return dataclasses.replace(prep, densify=densify)


# ------------------------------------------------------------- host images
def prepare_dense_tf(images, prep: ImagePrep, flips=None):
    """Standardize, crop, flip, to RGB and resize dense images ``[B, npix, npix, C]`` (TensorFlow).

    ``flips`` is float ``[B, 2]`` (1 = reverse the eta / phi axis) or None.
    """
    import tensorflow as tf

    from jettf.images import center_crop

    x = images
    if prep.standardize:
        x = (x - tf.constant(prep.mean)) / tf.constant(prep.std)
    if prep.crop is not None and prep.crop != prep.npix:
        x = center_crop(x, prep.crop)
    if flips is not None:
        flip_eta = flips[:, 0, None, None, None] > 0.5
        flip_phi = flips[:, 1, None, None, None] > 0.5
        x = tf.where(flip_eta, tf.reverse(x, axis=[1]), x)
        x = tf.where(flip_phi, tf.reverse(x, axis=[2]), x)
    if prep.to_rgb == "replicate":
        x = tf.concat([x, x, x], axis=-1)
    elif prep.to_rgb == "colormap":
        low = tf.reduce_min(x, axis=[1, 2, 3], keepdims=True)
        span = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True) - low
        scaled = tf.where(span > 0, (x - low) / tf.where(span > 0, span, 1.0), 0.0)
        table = tf.constant(colormap_table(prep.colormap))
        index = tf.cast(tf.round(scaled[..., 0] * (table.shape[0] - 1)), tf.int32)
        x = tf.gather(table, index)
    if prep.resize is not None and prep.resize != x.shape[1]:
        x = tf.image.resize(x, [prep.resize, prep.resize], method="bilinear")
    return x


# ------------------------------------------------------------------ dataset
def num_examples(info: JetDatasetInfo, split: str, classes: Optional[Sequence[str]] = None) -> int:
    """Jets :func:`make_dataset` yields per pass over ``split`` (with a class selection, read from the labels)."""
    if classes is None:
        return info.num_examples(split)
    wanted = [info.class_names.index(c) for c in classes]
    return int(np.isin(info.labels(split), wanted).sum())


def make_dataset(
    dataset: Union[str, JetDatasetInfo],
    split: str = "train",
    *,
    data_dir: Optional[str] = None,
    batch_size: int = 128,
    inputs: Sequence[str] = ("image",),
    training: Optional[bool] = None,
    flips: Optional[str] = None,
    standardize: bool = False,
    crop: Union[None, bool, int] = None,
    to_rgb: Optional[str] = None,
    colormap: str = "viridis",
    resize: Optional[int] = None,
    densify: str = "auto",
    standardize_features: bool = False,
    classes: Optional[Sequence[str]] = None,
    label_format: str = "int",
    shuffle: Optional[bool] = None,
    shuffle_buffer: int = 10_000,
    seed: int = 0,
    deterministic: bool = True,
    cache: bool = False,
    repeat: bool = False,
    drop_remainder: bool = False,
    prep: Optional[ImagePrep] = None,
):
    """A ``tf.data.Dataset`` of ``(inputs, label)`` batches from a built jettf dataset.

    Args:
        dataset: ``"NAME/CONFIG"`` (with ``data_dir``) or a :class:`JetDatasetInfo`.
        split: a TFDS split string, slicing allowed: ``"train"``, ``"test"``,
            ``"train[:300000]"``, a K-fold part from :func:`kfold_splits`.
        inputs: what the model takes, from :data:`INPUT_KEYS`; ``image`` is dense
            ``[B, H, W, C]`` (or, densified on the device, ``image_index`` ``[B, K]``,
            ``image_values`` ``[B, K, C]`` and ``image_flips`` ``[B, 2]``);
            ``global_features`` ``[B, F]``; ``constituents`` ``[B, M, 4]`` (pt, eta,
            phi, energy; zero-padded); ``jet`` ``[B, 4]``; ``pid`` ``[B, M]``.
        training: data the model learns from. Flips and (by default) shuffling happen
            only then. Default: True for ``train`` splits, which a K-fold *validation*
            part is too -- pass ``training=False`` for it.
        flips: ``"eta"``, ``"phi"``, ``"both"`` or None (002: random flips along either
            axis or both, each axis with probability 1/2); ignored unless training.
        standardize, crop, to_rgb, colormap, resize, densify: see :func:`image_prep`.
        standardize_features: standardize global features with the training split's
            per-feature mean and std (002, section 2.5).
        classes: keep only these classes, relabelled 0.. in this order
            (e.g. ``("g", "t")`` for 000's binary g-vs-t task).
        label_format: ``"int"`` (int32 ``[B]``) or ``"onehot"`` (float32 ``[B, n]``).
        shuffle: shuffle shards and examples (default: ``training``); buffer ``shuffle_buffer``.
        seed: seeds shuffling and flips; with ``deterministic`` the same seed gives the
            same batches.
        deterministic: keep the order reproducible (parallel interleave and map in
            order); False lets tf.data trade order for speed.
        cache: cache the split's serialized records in memory after the first pass
            (the rounds of 002).
        repeat: repeat forever.
        prep: a ready :class:`ImagePrep` (overrides the image options).
    """
    import tensorflow as tf

    info = dataset if isinstance(dataset, JetDatasetInfo) else load_info(dataset, data_dir)
    unknown = sorted(set(inputs) - set(INPUT_KEYS))
    if unknown:
        raise ValueError(f"inputs {unknown} unknown; choose from {list(INPUT_KEYS)}")
    if "pid" in inputs and not info.layout.has_pid:
        raise ValueError(f"{info.name} stores no 'pid'")
    if label_format not in ("int", "onehot"):
        raise ValueError(f"label_format must be 'int' or 'onehot', got {label_format!r}")
    if flips not in FLIP_MODES:
        raise ValueError(f"flips must be one of {[m for m in FLIP_MODES if m]} or None, got {flips!r}")
    if training is None:
        training = all(part.strip().split("[")[0] == "train" for part in split.split("+"))
    shuffle = training if shuffle is None else shuffle
    flip_axes = FLIP_MODES[flips] if training else (False, False)
    if "image" in inputs and prep is None:
        prep = image_prep(info, standardize=standardize, crop=crop, to_rgb=to_rgb, colormap=colormap,
                          resize=resize, densify=densify)
    layout = info.layout

    # Labels: keep and relabel a class subset.
    n_out = info.n_classes
    relabel = None
    if classes is not None:
        missing = [c for c in classes if c not in info.class_names]
        if missing:
            raise ValueError(f"classes {missing} not in {info.name}'s classes {info.class_names}")
        table = np.full(info.n_classes, -1, np.int32)
        for new, name in enumerate(classes):
            table[info.class_names.index(name)] = new
        relabel = tf.constant(table)
        n_out = len(classes)

    instructions = info.file_instructions(split)
    if not instructions:
        raise ValueError(f"{info.name}: split {split!r} holds no records")
    ds = _instructions_dataset(instructions, shuffle_seed=seed if shuffle else None, deterministic=deterministic)
    if relabel is not None:
        ds = ds.filter(tf.autograph.experimental.do_not_convert(
            lambda s: tf.gather(relabel, records.parse_labels(s)) >= 0))
    if cache:
        ds = ds.cache()
    if repeat:
        ds = ds.repeat()
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    keys = set(inputs) | {"label"}
    device = prep is not None and prep.densify == "device"
    feature_mean = feature_std = None
    if standardize_features and "global_features" in inputs:
        if "feature_mean" not in info.metadata:
            raise ValueError(f"{info.name}: no feature_mean/feature_std in the metadata; rebuild the dataset")
        feature_mean = tf.constant(records.decode_array(info.metadata["feature_mean"]))
        std = records.decode_array(info.metadata["feature_std"])
        feature_std = tf.constant(np.where(std > 0, std, 1.0).astype(np.float32))
    flip_mask = tf.constant([float(flip_axes[0]), float(flip_axes[1])])
    any_flip = any(flip_axes)

    def prepare(serialized, draw):
        parsed = records.parse_batch(serialized, layout, keys=keys,
                                     pad_sparse_to=prep.max_pixels if device else None)
        batch = tf.shape(serialized)[0]
        out = {}
        if "image" in inputs:
            if any_flip:
                u = tf.random.stateless_uniform([batch, 2], seed=tf.stack([tf.cast(seed, tf.int64), draw]))
                flags = tf.cast(u < 0.5, tf.float32) * flip_mask
            else:
                flags = tf.zeros([batch, 2], tf.float32)
            if device:
                out["image_index"] = parsed["image_index"]
                out["image_values"] = parsed["image_values"]
                out["image_flips"] = flags
            else:
                from jettf.images import densify_tf

                dense = densify_tf(parsed["image_index"], parsed["image_values"], parsed["image_count"], layout.npix)
                out["image"] = prepare_dense_tf(dense, prep, flags if any_flip else None)
        if "global_features" in inputs:
            g = parsed["global_features"]
            out["global_features"] = g if feature_mean is None else (g - feature_mean) / feature_std
        for key in ("constituents", "jet", "pid"):
            if key in inputs:
                out[key] = parsed[key]
        label = parsed["label"] if relabel is None else tf.gather(relabel, parsed["label"])
        if label_format == "onehot":
            label = tf.one_hot(label, n_out, dtype=tf.float32)
        return out, label

    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((ds, draws)).map(tf.autograph.experimental.do_not_convert(prepare), num_parallel_calls=tf.data.AUTOTUNE,
                                              deterministic=deterministic)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    options.autotune.enabled = True
    options.experimental_optimization.map_parallelization = True
    return ds.with_options(options)
