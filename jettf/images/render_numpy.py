"""Numpy renderer: a whole JetBatch to sparse or dense images at once, no loop over jets or particles.

Sparse layout: per jet, the constituents' flat pixel keys ``pixel * M + slot``
are sorted along the constituent axis; equal pixels become neighbours, a
cumulative sum of "new pixel" flags gives each constituent its sparse slot,
and one ``np.bincount`` per summed quantity adds them up. Dense images are
the sparse ones scattered into zeros. Subjets (leading_subjet centring,
subjet rotation) come from FastJet's compiled multi-event clustering.
Geometry runs in float64; outputs are float32.
"""

from __future__ import annotations

import types
from typing import NamedTuple

import numpy as np

from . import channels as _channels
from .preprocess import SUBJET_R, Constituents, Subjets, image_coordinates, needs_subjets, pixel_index

__all__ = ["SparseImages", "render", "densify"]


class SparseImages(NamedTuple):
    """Sparse jet images, one row per jet (numpy arrays, or tensors from ``render_tf``).

    Attributes:
        index: int32 ``[N, K]`` unique flat pixel indices ``eta_bin * npix + phi_bin``,
            ascending in the first ``count`` entries, 0 after.
        values: float32 ``[N, K, C]`` channel values of those pixels, 0 after ``count``.
        count: int32 ``[N]`` number of non-empty pixels.
        n_outside: int32 ``[N]`` real constituents dropped for lying outside the image.
    """

    index: object
    values: object
    count: object
    n_outside: object


NP_OPS = types.SimpleNamespace(
    where=np.where,
    sum=np.sum,
    abs=np.abs,
    floor=np.floor,
    atan2=np.arctan2,
    cos=np.cos,
    sin=np.sin,
    sinh=np.sinh,
    sign=np.sign,
    sqrt=np.sqrt,
    maximum=np.maximum,
    minimum=np.minimum,
    argmax=np.argmax,
    take=lambda x, i: np.take_along_axis(x, i[:, None], axis=1)[:, 0],
    gather=np.take,
    to_int=lambda x: np.asarray(x).astype(np.intp),
    stack=np.stack,
    constant=np.asarray,
)


def render(batch, spec, sparse: bool = False):
    """Render a JetBatch with an ImageSpec.

    Returns dense float32 ``[N, npix, npix, C]`` (axis 1 = eta, axis 2 = phi), or with
    ``sparse=True`` a :class:`SparseImages` with ``K = batch.max_constituents``. The
    number of constituents dropped outside the image is only in the sparse form.
    Charged channels take ``batch.charge``, else ``batch.pid`` (see
    :func:`jettf.images.channels.constituent_charge`); the subdetector channels take
    ``batch.subdetector`` (see :func:`jettf.images.channels.constituent_subdetector`).
    """
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    charged = None
    if _channels.needs_charge(spec.channels):
        charged = (np.asarray(_channels.constituent_charge(batch)) != 0).astype(np.float64)
    subdetector = None
    if _channels.needs_subdetector(spec.channels):
        subdetector = f64(_channels.constituent_subdetector(batch, spec.channels))
    c = Constituents(
        f64(batch.pt), f64(batch.eta), f64(batch.phi), f64(batch.energy), np.asarray(batch.mask, bool),
        charged, f64(batch.jet_eta), f64(batch.jet_phi), subdetector,
    )
    subjets = _fastjet_subjets(c) if needs_subjets(spec) else None
    x, y = image_coordinates(NP_OPS, c, spec, subjets)
    pix, n_outside = pixel_index(NP_OPS, x, y, c.mask, spec.npix, spec.extent)
    quantities = {q: _channels.QUANTITIES[q](c, NP_OPS) for q in _channels.quantities_for(spec.channels)}
    index, sums, count = _sum_per_pixel(pix, spec.npix**2, quantities)
    values = _channels.pixel_values(NP_OPS, spec, sums).astype(np.float32)
    images = SparseImages(index, values, count, n_outside.astype(np.int32))
    return images if sparse else densify(images, spec.npix)


def _sum_per_pixel(pix, n_pixels, quantities):
    """Unique pixels per jet (int32 ``[N, M]``), per-pixel sums ``{name: [N, M]}`` and counts ``[N]``.

    ``pix`` is ``[N, M]`` with ``n_pixels`` marking dropped constituents.
    """
    n, m = pix.shape
    shift = max(m - 1, 1).bit_length()  # low bits of a key hold the constituent slot
    keys = np.sort((pix.astype(np.int64) << shift) | np.arange(m), axis=1)
    spix, slot = keys >> shift, keys & ((1 << shift) - 1)
    kept = spix < n_pixels
    new = kept.copy()
    new[:, 1:] &= spix[:, 1:] != spix[:, :-1]
    offset = np.arange(n)[:, None] * m
    target = (np.cumsum(new, axis=1) - 1 + offset)[kept]
    source = (slot + offset)[kept]
    sums = {
        name: np.bincount(target, weights=q.ravel()[source], minlength=n * m).reshape(n, m)
        for name, q in quantities.items()
    }
    index = np.zeros(n * m, dtype=np.int32)
    index[target[new[kept]]] = spix[new]
    return index.reshape(n, m), sums, new.sum(axis=1).astype(np.int32)


def _fastjet_subjets(c: Constituents) -> Subjets:
    """The two hardest inclusive kT subjets (R = SUBJET_R) per jet, from FastJet's multi-event clustering."""
    import awkward as ak
    import fastjet

    mask = c.mask
    pt = c.pt[mask]
    eta, phi = c.eta[mask], c.phi[mask]
    particles = ak.zip({"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "E": c.energy[mask]})
    events = ak.unflatten(particles, mask.sum(axis=1))
    jets = fastjet.ClusterSequence(events, fastjet.JetDefinition(fastjet.kt_algorithm, SUBJET_R)).inclusive_jets()
    jets = jets[ak.argsort(jets.px**2 + jets.py**2, axis=1, ascending=False)]
    top = ak.pad_none(jets[:, :2], 2, axis=1, clip=True)
    px, py, pz = (ak.to_numpy(ak.fill_none(getattr(top, f), 0.0)).astype(np.float64) for f in ("px", "py", "pz"))
    sub_pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, sub_pt, out=np.zeros_like(pz), where=sub_pt > 0))
    return Subjets(eta, np.arctan2(py, px), np.minimum(ak.to_numpy(ak.num(jets, axis=1)), 2))


def densify(sparse: SparseImages, npix: int) -> np.ndarray:
    """Dense float32 images ``[N, npix, npix, C]`` from numpy :class:`SparseImages`."""
    index, values, count = np.asarray(sparse.index), np.asarray(sparse.values), np.asarray(sparse.count)
    n, k = index.shape
    used = np.arange(k) < count[:, None]
    if used.any() and index[used].max() >= npix * npix:
        raise ValueError(
            f"densify: pixel index {index[used].max()} does not fit npix={npix} (expected < {npix * npix})"
        )
    out = np.zeros((n, npix * npix, values.shape[-1]), dtype=np.float32)
    out[np.nonzero(used)[0], index[used]] = values[used]
    return out.reshape(n, npix, npix, values.shape[-1])
