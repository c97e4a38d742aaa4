"""`ImagePreparation`: the one Keras layer that turns stored jet images into a model's image input.

Every step between a rendered image and the first convolution lives here, once::

    sparse pixels (image_index [B, K], image_values [B, K, C])  --densify-->  image [B, npix, npix, C]
    or a dense image [B, npix, npix, C] (physical units: the ImageSpec's, e.g. pt in GeV)
      --> channels: keep some of the channels, by name (003 Table 4: tracks, ECAL, HCAL subsets)
      --> standardize: (x - pixel_mean) / max(pixel_std, std_floor * max(pixel_std of the channel))
      --> centre crop (002 section 2.2: 35 -> 28, 40 -> 32)
      --> colormap: one channel -> RGB through a matplotlib colormap, min-max per image (000)
      --> resize (bilinear)

The per-pixel mean and standard deviation of the training split are layer weights, so
``model.keras`` and the SavedModel carry them. The layer sits at the front of every image model
(:func:`jettf.models.build` with ``preparation=``); random flips, an augmentation, are Keras'
``RandomFlip`` layers right after it, active only in training.

The same layer densifies sparse pixels inside ``tf.data`` when that is faster (CPU-only
TensorFlow, see :func:`jettf.data.densify_on_host`): one implementation, two placements.

Public Keras 3 ops only: the layer runs on the TensorFlow and JAX backends.
"""

from __future__ import annotations

from typing import Optional, Union

import keras
import numpy as np

from .spec import ImageSpec

__all__ = ["ImagePreparation", "colormap_table", "DEFAULT_STD_FLOOR"]

#: Standardization divides by max(pixel_std, DEFAULT_STD_FLOOR x the channel's largest pixel_std).
#: Without a floor, a pixel that training jets almost never fill (the image border) has a
#: standard deviation near zero, and one soft particle there becomes a value of ~100; the
#: floor keeps such pixels within a few units (the trust issue's Grad-CAM border artefact).
DEFAULT_STD_FLOOR = 0.05

SPARSE_KEYS = ("image_index", "image_values")


def colormap_table(name: str = "viridis", n: int = 256) -> np.ndarray:
    """RGB lookup table ``[n, 3]`` float32 in [0, 1] of a matplotlib colormap."""
    import matplotlib

    return np.asarray(matplotlib.colormaps[name](np.linspace(0.0, 1.0, n))[:, :3], dtype=np.float32)


def _resolve_channels(channels, spec: ImageSpec) -> Optional[tuple]:
    """``channels`` as a tuple of the spec's channel names (None: all): a sequence or ``"tracks,ecal"``."""
    if channels is None:
        return None
    if isinstance(channels, str):
        channels = [c.strip() for c in channels.split(",") if c.strip()]
    channels = tuple(str(c) for c in channels)
    unknown = [c for c in channels if c not in spec.channels]
    if not channels or unknown or len(set(channels)) != len(channels):
        raise ValueError(f"channels: expected distinct names from the images' channels {list(spec.channels)} (a list "
                         f"or 'a,b'), got {list(channels)}" + (f"; unknown {unknown}" if unknown else ""))
    return channels


def _resolve_crop(crop, npix: int) -> Optional[int]:
    """``crop`` as pixels: an int side, a float fraction of ``npix`` (002: 0.8), or None."""
    if crop is None or crop is False:
        return None
    if isinstance(crop, bool):
        raise ValueError(f"crop: expected an int side, a fraction in (0, 1] or None, got {crop!r}")
    if isinstance(crop, float) and 0 < crop <= 1:
        crop = int(round(crop * npix))
    if not isinstance(crop, (int, np.integer)) or not 1 <= int(crop) <= npix:
        raise ValueError(f"crop: expected a side in [1, {npix}] for {npix}x{npix} images (or a fraction in (0, 1]), "
                         f"got {crop!r}")
    return int(crop)


@keras.saving.register_keras_serializable(package="jettf")
class ImagePreparation(keras.layers.Layer):
    """Sparse pixels or a dense jet image -> the model's image input (module docstring).

    Args:
        image_spec: the :class:`ImageSpec` the images were rendered with (or its dict); it fixes
            ``npix`` and the channels, and is kept so a saved model knows how to render its input.
        channels: keep only these channels, by name and in this order (a sequence or a comma-separated
            string, e.g. ``"tracks,ecal"``: 003 Table 4's subdetector subsets); None keeps all. The model
            still takes the whole rendered image.
        standardize: per-pixel standardization with the training split's statistics (002).
        pixel_mean, pixel_std: float ``[npix, npix, C]`` arrays (required with ``standardize``,
            unless the weights are loaded afterwards).
        std_floor: the smallest divisor, as a fraction of each channel's largest ``pixel_std``.
        crop: centre-crop side in pixels, or a fraction of ``npix`` (0.8: 002's 35 -> 28, 40 -> 32).
        colormap: a matplotlib colormap name: one channel becomes RGB (000's images as
            ``imshow`` draws them); None keeps the channels.
        resize: output side (bilinear), or None.
    """

    def __init__(self, image_spec: Union[ImageSpec, dict], *, standardize: bool = False, pixel_mean=None,
                 pixel_std=None, std_floor: float = DEFAULT_STD_FLOOR, crop=None, colormap: Optional[str] = None,
                 resize: Optional[int] = None, channels=None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # standardization in float32 even under mixed precision
        kwargs.setdefault("name", "image_preparation")  # what tools look for (jettf.models.find_layer)
        super().__init__(**kwargs)
        self.image_spec = image_spec if isinstance(image_spec, ImageSpec) else ImageSpec.from_dict(image_spec)
        self.channels = _resolve_channels(channels, self.image_spec)
        self._channel_index = None if self.channels is None else [self.image_spec.channels.index(c)
                                                                  for c in self.channels]
        npix, channels = self.image_spec.npix, len(self.channels or self.image_spec.channels)
        self.standardize = bool(standardize)
        self.std_floor = float(std_floor)
        if not 0 <= self.std_floor < 1:
            raise ValueError(f"std_floor: expected a fraction in [0, 1), got {std_floor!r}")
        self.crop = _resolve_crop(crop, npix)
        if colormap is not None and channels != 1:
            raise ValueError(f"colormap turns one channel into RGB; the images have {channels} channels "
                             f"{list(self.channels or self.image_spec.channels)}")
        self.colormap = colormap
        if resize is not None and (isinstance(resize, bool) or int(resize) < 1):
            raise ValueError(f"resize: expected a positive side in pixels or None, got {resize!r}")
        self.resize = None if resize is None else int(resize)
        shape = self.image_spec.shape
        if self.standardize:
            self.pixel_mean = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="pixel_mean")
            self.pixel_scale = self.add_weight(shape=shape, initializer="ones", trainable=False, name="pixel_scale")
            if (pixel_mean is None) != (pixel_std is None):
                raise ValueError("pixel_mean and pixel_std must be given together")
            if pixel_mean is not None:
                self.set_statistics(pixel_mean, pixel_std)
        elif pixel_mean is not None or pixel_std is not None:
            raise ValueError("pixel_mean/pixel_std given but standardize=False")
        if self.colormap is not None:
            self.colormap_rgb = self.add_weight(shape=(256, 3), initializer="zeros", trainable=False, name="colormap")
            self.colormap_rgb.assign(colormap_table(self.colormap))
        self.built = True

    # ------------------------------------------------------------ statistics
    def set_statistics(self, pixel_mean, pixel_std) -> None:
        """Set the per-pixel mean and standard deviation ``[npix, npix, C]`` (training split)."""
        mean = np.asarray(pixel_mean, dtype=np.float32)
        std = np.asarray(pixel_std, dtype=np.float32)
        shape = self.image_spec.shape
        if mean.shape != shape or std.shape != shape:
            raise ValueError(f"pixel_mean/pixel_std: shapes {mean.shape}/{std.shape}; expected the ImageSpec's {shape}")
        if not (np.isfinite(mean).all() and np.isfinite(std).all()) or (std < 0).any():
            raise ValueError("pixel_mean/pixel_std: expected finite values and non-negative standard deviations")
        floor = self.std_floor * std.max(axis=(0, 1), keepdims=True)
        scale = np.maximum(std, floor)
        self.pixel_mean.assign(mean)
        self.pixel_scale.assign(np.where(scale > 0, scale, 1.0).astype(np.float32))  # a never-filled channel

    # ------------------------------------------------------------ geometry
    @property
    def input_shape_dense(self) -> tuple:
        """The rendered image ``(npix, npix, C)`` this layer takes."""
        return self.image_spec.shape

    @property
    def output_side(self) -> int:
        return self.resize or self.crop or self.image_spec.npix

    @property
    def output_image_shape(self) -> tuple:
        """``(side, side, channels)`` of the prepared image."""
        n_channels = len(self.channels or self.image_spec.channels)
        return (self.output_side, self.output_side, 3 if self.colormap else n_channels)

    @property
    def window(self) -> float:
        """Half-width in eta and phi (radians) that the prepared image covers (a crop narrows it)."""
        return self.image_spec.extent * (self.crop or self.image_spec.npix) / self.image_spec.npix

    # ------------------------------------------------------------ the steps
    def densify(self, index, values):
        """Dense ``[B, npix, npix, C]`` from padded sparse pixels; repeated indices add up, padding (0, 0) adds nothing.

        A scatter-add of the entries into the flat batch of images: ``segment_sum`` in Keras ops, and on the
        TensorFlow backend ``tf.tensor_scatter_nd_add``, the same sum in the form ONNX expresses as
        ``ScatterND(reduction="add")`` (tf2onnx turns a segment sum into a one-hot product, quadratic in
        the batch), so exported graphs stay linear in the number of jets.
        """
        ops = keras.ops
        npix, channels = self.image_spec.npix, int(values.shape[-1])
        n_pix = npix * npix
        batch = ops.shape(index)[0]
        flat = ops.reshape(ops.cast(index, "int32") + ops.arange(batch, dtype="int32")[:, None] * n_pix, (-1,))
        entries = ops.reshape(ops.cast(values, "float32"), (-1, channels))
        if keras.config.backend() == "tensorflow":
            import tensorflow as tf

            dense = tf.tensor_scatter_nd_add(tf.zeros([batch * n_pix, channels]), flat[:, None], entries)
        else:
            dense = ops.segment_sum(entries, flat, num_segments=batch * n_pix)
        return ops.reshape(dense, (-1, npix, npix, channels))

    def call(self, inputs):
        ops = keras.ops
        mean, scale = (self.pixel_mean, self.pixel_scale) if self.standardize else (None, None)
        index = self._channel_index
        if isinstance(inputs, dict):
            values = inputs["image_values"]
            if index is not None:  # select before densifying: fewer channels to scatter
                values = ops.take(values, index, axis=-1)
            x = self.densify(inputs["image_index"], values)
        else:
            x = ops.cast(inputs, "float32")
            if index is not None:
                x = ops.take(x, index, axis=-1)
        if index is not None and self.standardize:
            mean, scale = ops.take(mean, index, axis=-1), ops.take(scale, index, axis=-1)
        if self.crop is not None and self.crop != self.image_spec.npix:
            # 002 standardizes, then crops; per-pixel standardization commutes with cropping (image and statistics
            # cropped alike), so cropping first gives the same numbers for a third less arithmetic.
            top = (self.image_spec.npix - self.crop) // 2  # as keras.layers.CenterCrop: 35 -> 28 drops 3 then 4
            window = (slice(None), slice(top, top + self.crop), slice(top, top + self.crop), slice(None))
            x = x[window]
            if self.standardize:
                mean, scale = mean[window[1:]], scale[window[1:]]
        if self.standardize:
            x = (x - mean) * (1.0 / scale)  # a product over the batch: the reciprocal is of one image
        if self.colormap is not None:
            low = ops.min(x, axis=(1, 2, 3), keepdims=True)
            span = ops.max(x, axis=(1, 2, 3), keepdims=True) - low
            scaled = ops.where(span > 0, (x - low) / ops.where(span > 0, span, 1.0), 0.0)
            x = ops.take(self.colormap_rgb, ops.cast(ops.round(scaled[..., 0] * 255.0), "int32"), axis=0)
        if self.resize is not None and self.resize != x.shape[1]:
            x = ops.image.resize(x, (self.resize, self.resize), interpolation="bilinear")
        return x

    def compute_output_shape(self, input_shape):
        batch = (input_shape["image_index"] if isinstance(input_shape, dict) else input_shape)[0]
        return (batch, *self.output_image_shape)

    def get_config(self):
        config = super().get_config()
        config.update(image_spec=self.image_spec.to_dict(), standardize=self.standardize, std_floor=self.std_floor,
                      crop=self.crop, colormap=self.colormap, resize=self.resize,
                      channels=None if self.channels is None else list(self.channels))
        return config

    def describe(self) -> dict:
        """What the layer does, in words and numbers (for run configs and model cards)."""
        return {"channels": None if self.channels is None else list(self.channels), "standardize": self.standardize,
                "std_floor": self.std_floor if self.standardize else None, "crop": self.crop,
                "colormap": self.colormap, "resize": self.resize, "input_shape": list(self.input_shape_dense),
                "output_shape": list(self.output_image_shape), "window": self.window}

    # ------------------------------------------------------------ construction
    @classmethod
    def from_dataset(cls, info, *, standardize: bool = False, std_floor: float = DEFAULT_STD_FLOOR, crop=None,
                     colormap: Optional[str] = None, resize: Optional[int] = None, channels=None,
                     **kwargs) -> "ImagePreparation":
        """The preparation of a built dataset's images (:class:`jettf.data.JetDatasetInfo`), with its
        training-split statistics when ``standardize``."""
        mean = std = None
        if standardize:
            if "pixel_mean" not in info.metadata:
                raise ValueError(f"{info.name}: no pixel_mean/pixel_std in the metadata; rebuild the dataset")
            mean, std = info.pixel_mean, info.pixel_std
        return cls(info.image_spec, standardize=standardize, pixel_mean=mean, pixel_std=std, std_floor=std_floor,
                   crop=crop, colormap=colormap, resize=resize, channels=channels, **kwargs)
