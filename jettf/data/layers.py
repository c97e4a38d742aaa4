"""Densify sparse jet images on the device: :class:`SparseImagePrep` and :func:`wrap_model`.

With ``make_dataset(..., densify="device")`` the pipeline yields padded
sparse pixels; the first layer of the model scatters them into dense images
and applies the same standardization, crop, flips, RGB conversion and resize
as the host pipeline (:func:`jettf.data.pipeline.prepare_dense_tf`). Public
Keras 3 ops only, so it runs on TensorFlow and JAX; the mean/std images are
saved with the model as (non-trainable) weights.
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["SparseImagePrep", "wrap_model"]


@keras.saving.register_keras_serializable(package="jettf")
class SparseImagePrep(keras.layers.Layer):
    """``[image_index [B, K], image_values [B, K, C], image_flips [B, 2]]`` -> prepared dense images.

    Args mirror :class:`jettf.data.ImagePrep` (``mean``/``std`` arrays are weights).
    """

    def __init__(self, npix, n_channels, standardize=False, crop=None, to_rgb=None, colormap="viridis",
                 resize=None, mean=None, std=None, **kwargs):
        super().__init__(**kwargs)
        self.npix, self.n_channels = int(npix), int(n_channels)
        self.standardize, self.crop, self.to_rgb = bool(standardize), crop, to_rgb
        self.colormap, self.resize = colormap, resize
        shape = (self.npix, self.npix, self.n_channels)
        if self.standardize:
            self.mean = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="pixel_mean")
            self.std = self.add_weight(shape=shape, initializer="ones", trainable=False, name="pixel_std")
            if mean is not None:
                self.mean.assign(np.asarray(mean, np.float32))
                self.std.assign(np.asarray(std, np.float32))
        if self.to_rgb == "colormap":
            from jettf.data.pipeline import colormap_table

            self.table = self.add_weight(shape=(256, 3), initializer="zeros", trainable=False, name="colormap")
            self.table.assign(colormap_table(colormap))

    @classmethod
    def from_prep(cls, prep, **kwargs) -> "SparseImagePrep":
        return cls(prep.npix, prep.n_channels, prep.standardize, prep.crop, prep.to_rgb, prep.colormap, prep.resize,
                   prep.mean, prep.std, **kwargs)

    def call(self, inputs):
        ops = keras.ops
        index, values, flips = inputs
        n_pix = self.npix * self.npix
        batch = ops.shape(index)[0]
        flat = ops.reshape(ops.cast(index, "int32") + ops.arange(batch, dtype="int32")[:, None] * n_pix, (-1,))
        dense = ops.segment_sum(ops.reshape(ops.cast(values, "float32"), (-1, self.n_channels)), flat,
                                num_segments=batch * n_pix)
        x = ops.reshape(dense, (-1, self.npix, self.npix, self.n_channels))
        if self.standardize:
            x = (x - self.mean) / self.std
        if self.crop is not None and self.crop != self.npix:
            from jettf.images import center_crop

            x = center_crop(x, self.crop)
        flips = ops.cast(flips, "float32")
        x = ops.where(flips[:, 0, None, None, None] > 0.5, ops.flip(x, axis=1), x)
        x = ops.where(flips[:, 1, None, None, None] > 0.5, ops.flip(x, axis=2), x)
        if self.to_rgb == "replicate":
            x = ops.concatenate([x, x, x], axis=-1)
        elif self.to_rgb == "colormap":
            low = ops.min(x, axis=(1, 2, 3), keepdims=True)
            span = ops.max(x, axis=(1, 2, 3), keepdims=True) - low
            scaled = ops.where(span > 0, (x - low) / ops.where(span > 0, span, 1.0), 0.0)
            x = ops.take(self.table, ops.cast(ops.round(scaled[..., 0] * 255.0), "int32"), axis=0)
        if self.resize is not None and self.resize != x.shape[1]:
            x = ops.image.resize(x, (self.resize, self.resize), interpolation="bilinear")
        return x

    def compute_output_shape(self, input_shape):
        side = self.resize or self.crop or self.npix
        return (input_shape[0][0], side, side, 3 if self.to_rgb else self.n_channels)

    def get_config(self):
        config = super().get_config()
        config.update(npix=self.npix, n_channels=self.n_channels, standardize=self.standardize, crop=self.crop,
                      to_rgb=self.to_rgb, colormap=self.colormap, resize=self.resize)
        return config


def wrap_model(model: keras.Model, prep) -> keras.Model:
    """``model`` taking a dense ``image``, as a model that takes :func:`make_dataset`'s inputs.

    For ``prep.densify == "host"`` the model is returned unchanged. Otherwise the
    result takes ``image_index``, ``image_values``, ``image_flips`` (and the model's
    other named inputs, e.g. ``global_features``) and densifies with
    :class:`SparseImagePrep` before calling ``model``.
    """
    if prep is None or prep.densify == "host":
        return model
    names = [t.name.split(":")[0] for t in model.inputs]
    inputs = {
        "image_index": keras.Input((prep.max_pixels,), dtype="int32", name="image_index"),
        "image_values": keras.Input((prep.max_pixels, prep.n_channels), dtype="float32", name="image_values"),
        "image_flips": keras.Input((2,), dtype="float32", name="image_flips"),
    }
    image = SparseImagePrep.from_prep(prep, name="sparse_image_prep")(
        [inputs["image_index"], inputs["image_values"], inputs["image_flips"]])
    call_inputs = {}
    for tensor, name in zip(model.inputs, names):
        if name == "image":
            call_inputs[name] = image
        else:
            inputs[name] = keras.Input(tensor.shape[1:], dtype=tensor.dtype, name=name)
            call_inputs[name] = inputs[name]
    if len(names) == 1 and names[0] != "image":
        raise ValueError(f"wrap_model: the model's input is named {names[0]!r}; expected 'image'")
    return keras.Model(inputs, model(call_inputs if len(names) > 1 or names == ["image"] else image),
                       name=f"{model.name}_sparse")
