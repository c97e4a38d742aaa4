"""Average images, difference images and pixel-output correlation maps (001 section 6).

* :func:`class_averages`: the mean jet image of each class.
* :func:`difference_image`: <signal> - <background>, optionally after dividing each average by its total
  intensity (where each class puts its fraction of the jet rather than which class is brighter).
* :func:`pearson_map`: per pixel (and channel), the Pearson correlation coefficient between the pixel
  intensity and the network output c(x) over a sample of jets,

      rho_ij = sum_k (x_ij^k - mean x_ij)(c^k - mean c) / sqrt( sum_k (x_ij^k - mean x_ij)^2 sum_k (c^k - mean c)^2 ),

  a true correlation coefficient in [-1, 1] (001 writes the normalisation with variances where standard
  deviations are meant). Pixels whose intensity never varies over the sample (e.g. never hit) have no defined
  correlation and are NaN, as is the whole map when the output is constant.

Everything streams over the jets in chunks (``batch_size``), so arrays larger than memory (``np.memmap``, HDF5
datasets) work; accumulation is in float64, and the Pearson moments are merged chunk by chunk with Chan et
al.'s pairwise update (no cancellation from raw sums of squares). Images are ``[N, H, W]`` or ``[N, H, W, C]``
(image axis 1 = eta, axis 2 = phi); results keep the per-image shape.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

__all__ = ["crop_window", "weight_inside", "class_averages", "difference_image", "pearson_map"]


def _check_images(images, name: str = "images"):
    shape = np.shape(images)
    if len(shape) not in (3, 4):
        raise ValueError(f"{name}: expected images [N, H, W] or [N, H, W, C], got shape {shape}")
    if shape[0] == 0:
        raise ValueError(f"{name}: no images (shape {shape})")
    return shape


def _labels(labels, n: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels: expected one integer class label per image, shape [{n}], got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) and not np.issubdtype(y.dtype, np.bool_):
        if not np.all(y == np.round(y)):
            raise ValueError(f"labels: expected integer class labels, got dtype {y.dtype}")
    return y.astype(np.int64)


def class_averages(images, labels, class_names: Optional[Sequence[str]] = None, *, batch_size: int = 4096) -> dict:
    """``{class name: mean image}`` (float64, per-image shape) for every class present in ``labels``.

    ``class_names[c]`` names class ``c``; without them the keys are the integer labels.
    """
    shape = _check_images(images)
    y = _labels(labels, shape[0])
    classes = np.unique(y)
    if class_names is not None and (classes.min() < 0 or classes.max() >= len(class_names)):
        raise ValueError(f"labels: values {classes.tolist()} do not index class_names {list(class_names)}")
    sums = {int(c): np.zeros(shape[1:], dtype=np.float64) for c in classes}
    for start in range(0, shape[0], batch_size):
        chunk = np.asarray(images[start:start + batch_size], dtype=np.float64)
        yc = y[start:start + batch_size]
        for c in np.unique(yc):
            sums[int(c)] += chunk[yc == c].sum(axis=0)
    counts = {int(c): int(np.sum(y == c)) for c in classes}
    key = (lambda c: str(class_names[c])) if class_names is not None else (lambda c: c)
    return {key(c): sums[c] / counts[c] for c in sums}


def difference_image(images, labels, signal: int = 1, background: int = 0, *, normalize: bool = False,
                     batch_size: int = 4096) -> np.ndarray:
    """<signal> - <background> mean image (float64). With ``normalize`` each mean is first divided by its total
    intensity (per channel)."""
    shape = _check_images(images)
    y = _labels(labels, shape[0])
    for name, c in (("signal", signal), ("background", background)):
        if not np.any(y == c):
            raise ValueError(f"{name}={c}: no image has that label (labels present: {np.unique(y).tolist()})")
    means = class_averages(images, y, batch_size=batch_size)
    sig, bkg = means[int(signal)], means[int(background)]
    if normalize:
        axes = (0, 1)
        for name, m in (("signal", sig), ("background", bkg)):
            total = m.sum(axis=axes)
            if np.any(total <= 0):
                raise ValueError(f"{name}: total intensity {total} <= 0; cannot normalize (normalize=False)")
        sig, bkg = sig / sig.sum(axis=axes), bkg / bkg.sum(axis=axes)
    return sig - bkg


def pearson_map(images, scores, *, batch_size: int = 4096) -> np.ndarray:
    """Pearson r between each pixel's intensity and ``scores`` ``[N]`` (e.g. P(signal)); float64, per-image
    shape; NaN where the pixel (or the score) does not vary. See the module docstring."""
    shape = _check_images(images)
    c = np.asarray(scores, dtype=np.float64)
    if c.ndim == 2 and c.shape[1] == 1:
        c = c[:, 0]
    if c.shape != (shape[0],):
        raise ValueError(f"scores: expected one network output per image, shape [{shape[0]}], got {c.shape}"
                         + ("; for [N, C] probabilities pass probs[:, class_index]" if c.ndim == 2 else ""))
    if not np.all(np.isfinite(c)):
        raise ValueError("scores: contains nan or inf")
    n = 0
    mean_x = np.zeros(shape[1:])
    m2_x = np.zeros(shape[1:])
    cov = np.zeros(shape[1:])
    mean_c = m2_c = 0.0
    for start in range(0, shape[0], batch_size):
        x = np.asarray(images[start:start + batch_size], dtype=np.float64)
        cb = c[start:start + batch_size]
        nb = x.shape[0]
        mx, mc = x.mean(axis=0), cb.mean()
        dx, dc = x - mx, cb - mc
        m2x_b = np.einsum("n...,n...->...", dx, dx)
        cov_b = np.tensordot(dc, dx, axes=(0, 0))
        m2c_b = float(dc @ dc)
        total = n + nb
        delta_x, delta_c = mx - mean_x, mc - mean_c
        w = n * nb / total
        m2_x += m2x_b + delta_x * delta_x * w
        cov += cov_b + delta_x * delta_c * w
        m2_c += m2c_b + delta_c * delta_c * w
        mean_x += delta_x * nb / total
        mean_c += delta_c * nb / total
        n = total
    denom = np.sqrt(m2_x * m2_c)
    # relative threshold: intensities that differ only by rounding count as constant
    scale = np.maximum(np.abs(mean_x), 1e-300) ** 2 * n
    defined = (m2_x > 1e-24 * scale) & (m2_c > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(defined, cov / np.where(defined, denom, 1.0), np.nan)
    return np.clip(r, -1.0, 1.0)


def crop_window(image, extent: float, window: float) -> np.ndarray:
    """The centre of a square ``[H, W]`` image over ``[-extent, extent]^2`` that covers ``[-window, window]^2``
    (as :class:`jettf.images.ImagePreparation` crops: the first ``(H - side) // 2`` rows and columns dropped)."""
    image = np.asarray(image)
    if not 0 < window <= extent:
        raise ValueError(f"window: expected a half-width in (0, extent={extent}], got {window}")
    side = int(round(image.shape[0] * window / extent))
    top = (image.shape[0] - side) // 2
    return image[top: top + side, top: top + side]


def weight_inside(heat_map, window: float, radius: float) -> float:
    """Fraction of a non-negative ``[H, W]`` map over ``[-window, window]^2`` whose pixel centres lie within
    ``radius`` of the image centre (Delta R < radius): how much a Grad-CAM map looks at the jet core."""
    m = np.asarray(heat_map, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"heat_map: expected an [H, W] map, got shape {m.shape}")
    eta = (np.arange(m.shape[0]) + 0.5) / m.shape[0] * 2 * window - window
    phi = (np.arange(m.shape[1]) + 0.5) / m.shape[1] * 2 * window - window
    inside = np.hypot(eta[:, None], phi[None, :]) < radius
    total = m.sum()
    return float(m[inside].sum() / total) if total > 0 else float("nan")
