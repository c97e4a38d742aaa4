"""The tf.data input pipeline: TFRecords -> ``(inputs, label)`` batches. It parses and batches, nothing more.

Stages, all vectorized per batch::

    file shards (TFDS split slicing) --interleave(parallel)--> serialized records
      [--filter classes] [--cache] [--shuffle] --batch--> parse (TFDS' feature spec, one op per batch)
      [--densify: the model's own ImagePreparation layer, mapped here]  --> prefetch

Images arrive as the records store them: padded sparse pixels ``image_index`` ``[B, K]`` and
``image_values`` ``[B, K, C]`` (0.5 kB per 299x299 jet instead of 1 MB dense), which the
model's first layer (:class:`jettf.images.ImagePreparation`) densifies, standardizes, crops
and resizes. With ``densify=True`` the same layer's densify step runs here instead and the
batches carry the dense physical ``image`` ``[B, npix, npix, C]``: faster on a CPU-only
TensorFlow machine, where tf.data's parallel threads prepare the next batch while the model
trains (:func:`densify_on_host` is the measured rule). Augmentation (random flips) and
standardization are layers of the model, so nothing here depends on training or serving.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from jettf.data.info import JetDatasetInfo, _instructions_dataset, load_info

__all__ = ["make_dataset", "num_examples", "accelerator_present", "densify_on_host", "INPUT_KEYS", "SPARSE_KEYS"]

#: Inputs a model may ask for.
INPUT_KEYS = ("image", "global_features", "constituents", "jet", "pid")
#: The record features that hold a sparse image.
SPARSE_KEYS = ("image_index", "image_values")


def accelerator_present() -> bool:
    """Whether the Keras backend sees a GPU or TPU."""
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


def densify_on_host() -> bool:
    """Where sparse images become dense: in tf.data (True) or in the model (False).

    Measured (benchmarks/bench_pipeline.py, benchmarks/README.md): on 2 CPU cores with the
    TensorFlow backend, densifying in tf.data's parallel map overlaps with the training step
    and is faster; with an accelerator the model densifies on it (a sparse batch is ~1000x
    smaller to transfer than a dense 299x299 one). Under JAX the model always densifies: its
    jit-compiled step includes the scatter, and tf.data cannot run JAX ops.
    """
    import keras

    return keras.config.backend() == "tensorflow" and not accelerator_present()


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
    densify: bool = False,
    classes: Optional[Sequence[str]] = None,
    label_format: str = "int",
    training: Optional[bool] = None,
    shuffle: Optional[bool] = None,
    shuffle_buffer: int = 10_000,
    seed: int = 0,
    deterministic: bool = True,
    cache: bool = False,
    repeat: bool = False,
    drop_remainder: bool = False,
    sample_weight=None,
    record_weights: bool = False,
):
    """A ``tf.data.Dataset`` of ``(inputs, label)`` (or ``(inputs, label, weight)``) batches from a built dataset.

    Args:
        dataset: ``"NAME/CONFIG"`` (with ``data_dir``) or a :class:`JetDatasetInfo`.
        split: a TFDS split string, slicing allowed: ``"train"``, ``"test"``,
            ``"train[:300000]"``, a K-fold part from :func:`kfold_splits`.
        inputs: what the model takes, from :data:`INPUT_KEYS`: ``image`` gives the sparse
            ``image_index`` int32 ``[B, K]`` and ``image_values`` float32 ``[B, K, C]`` (K =
            the dataset's ``max_pixels``; padding is index 0, value 0), or with ``densify``
            the dense ``image`` ``[B, npix, npix, C]`` in the ImageSpec's units;
            ``global_features`` ``[B, F]`` (raw; models standardize them);
            ``constituents`` ``[B, M, 4]`` (pt, eta, phi, energy; zero-padded);
            ``jet`` ``[B, 4]``; ``pid`` ``[B, M]``; the name of a second image the dataset stores
            (``info.extra_image_specs``, e.g. 004's ``hcal``): its sparse ``<name>_index`` /
            ``<name>_values``, or with ``densify`` the dense ``<name>`` ``[B, npix', npix', C']``.
        densify: make dense images here with the ImagePreparation layer's densify step
            (needs Keras' TensorFlow backend; see :func:`densify_on_host`).
        classes: keep only these classes, relabelled 0.. in this order
            (e.g. ``("g", "t")`` for 000's binary g-vs-t task).
        label_format: ``"int"`` (int32 ``[B]``) or ``"onehot"`` (float32 ``[B, n]``).
        training: the data a model learns from: shuffled by default. Default: True for
            ``train`` splits, which a K-fold *validation* part is too -- pass
            ``training=False`` for it.
        shuffle: shuffle shards and examples (default: ``training``); buffer ``shuffle_buffer``.
        seed: the shuffle seed; with ``deterministic`` the same seed gives the same
            batches, on every iteration of the dataset (the trainer passes one seed per
            epoch, so a resumed run sees the same order as an uninterrupted one, and a
            ``tf.distribute`` strategy, for which Keras takes a first batch from an
            iterator of its own, trains on the order one device sees).
        deterministic: keep the order reproducible; False lets tf.data trade order for speed.
        cache: cache the split's serialized records in memory after the first pass
            (the rounds of 002).
        repeat: repeat forever.
        sample_weight: ``f(labels [B], jet [B, 4]) -> weights [B]`` in TensorFlow ops (labels after the
            class selection), e.g. :meth:`jettf.training.reweight.Reweighting.weights_tf`; batches then
            carry a third element, as Keras' ``fit`` takes sample weights.
        record_weights: the weights are the records' stored ``weight`` (004's samples), times
            ``sample_weight``'s when both are given.
    """
    import tensorflow as tf

    info = dataset if isinstance(dataset, JetDatasetInfo) else load_info(dataset, data_dir)
    extra = [name for name in inputs if name in info.extra_image_specs]
    unknown = sorted(set(inputs) - set(INPUT_KEYS) - set(extra))
    if unknown:
        raise ValueError(f"inputs {unknown} unknown; choose from {list(INPUT_KEYS) + list(info.extra_image_specs)}")
    if record_weights and not info.layout.has_weight:
        raise ValueError(f"{info.name} stores no per-record 'weight'")
    if "pid" in inputs and not info.layout.has_pid:
        raise ValueError(f"{info.name} stores no 'pid'")
    if label_format not in ("int", "onehot"):
        raise ValueError(f"label_format must be 'int' or 'onehot', got {label_format!r}")
    if training is None:
        training = all(part.strip().split("[")[0] == "train" for part in split.split("+"))
    shuffle = training if shuffle is None else shuffle
    densifiers = {}
    if densify and ("image" in inputs or extra):
        import keras

        if keras.config.backend() != "tensorflow":
            raise ValueError(f"densify=True maps a Keras layer inside tf.data, which needs Keras' TensorFlow backend "
                             f"(this process uses {keras.config.backend()!r}); let the model densify instead")
        from jettf.images import ImagePreparation

        specs = {"image": info.image_spec, **info.extra_image_specs}
        densifiers = {name: ImagePreparation(specs[name], name=f"densify_{name}") for name in ["image", *extra]
                      if name in inputs}

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
    parser = info.parser
    ds = _instructions_dataset(instructions, shuffle_seed=seed if shuffle else None, deterministic=deterministic)
    if relabel is not None:
        ds = ds.filter(tf.autograph.experimental.do_not_convert(
            lambda s: tf.gather(relabel, tf.cast(parser.parse(s[None], ["label"])["label"][0], tf.int32)) >= 0))
    if cache:
        ds = ds.cache()
    if repeat:
        ds = ds.repeat()
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if not repeat:  # a known number of batches: Keras then knows where an epoch ends
        n = num_examples(info, split, classes)
        ds = ds.apply(tf.data.experimental.assert_cardinality(n // batch_size if drop_remainder else -(-n // batch_size)))

    images = [name for name in inputs if name == "image" or name in extra]
    keys = [k for k in inputs if k not in images] + [f"{n}_{part}" for n in images for part in ("index", "values")]
    keys += ["label"]
    parse_keys = keys + (["jet"] if sample_weight is not None and "jet" not in keys else [])
    parse_keys += ["weight"] if record_weights else []

    def prepare(serialized):
        parsed = parser.parse(serialized, parse_keys)
        out = {k: parsed[k] for k in keys if k != "label"}
        for name, densifier in densifiers.items():
            out[name] = densifier({f"image_{part}": out.pop(f"{name}_{part}") for part in ("index", "values")})
        label = tf.cast(parsed["label"], tf.int32)
        if relabel is not None:
            label = tf.gather(relabel, label)
        weight = None if sample_weight is None else sample_weight(label, parsed["jet"])
        if record_weights:
            weight = parsed["weight"] if weight is None else weight * parsed["weight"]
        if label_format == "onehot":
            label = tf.one_hot(label, n_out, dtype=tf.float32)
        return (out, label) if weight is None else (out, label, weight)

    ds = ds.map(tf.autograph.experimental.do_not_convert(prepare), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=deterministic)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    options.autotune.enabled = True
    options.experimental_optimization.map_parallelization = True
    return ds.with_options(options)
