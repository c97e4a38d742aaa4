"""Jet images: :class:`ImageSpec`, numpy and TensorFlow renderers, sparse and dense forms.

``render`` (numpy, for dataset builders) and ``render_tf`` (TensorFlow, for input
pipelines and serving) give the same images from the same constituents::

    spec = ImageSpec.effnet_s(npix=40)            # 002: pt, mass, energy; hardest at the centre
    sparse = render(batch, spec, sparse=True)     # SparseImages(index, values, count, n_outside)
    dense = densify(sparse, spec.npix)            # == render(batch, spec): [N, 40, 40, 3] float32
    prep = ImagePreparation(spec, standardize=True, pixel_mean=m, pixel_std=s, crop=32)  # a Keras layer:
    model_input = prep(dense)                     # standardize, crop (002 section 2.2), colormap, resize

Images are ``[N, npix, npix, C]``, axis 1 = eta, axis 2 = phi, binned like
``np.histogram2d`` over ``[-extent, extent]^2``; preprocessing and binning are
described in :mod:`jettf.images.preprocess`, channels in :mod:`jettf.images.channels`.
TensorFlow and Keras are imported only when ``render_tf`` or ``ImagePreparation`` is first used.
"""

from .channels import CHANNELS
from .render_numpy import SparseImages, densify, render
from .spec import ImageSpec

__all__ = ["ImageSpec", "CHANNELS", "render", "render_tf", "SparseImages", "densify", "ImagePreparation"]


def __getattr__(name):
    if name == "render_tf":
        from .render_tensorflow import render_tf

        return render_tf
    if name == "ImagePreparation":
        from .preparation import ImagePreparation

        return ImagePreparation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
