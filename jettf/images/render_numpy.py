"""Numpy renderer: a whole JetBatch to sparse or dense images at once, no loop over jets or particles.

Two sparse layouts (:class:`SparseImages`), both densified by adding entries per pixel:

- per constituent (specs whose channels are all additive, see
  :func:`jettf.images.channels.additive`; the default for them): one entry per
  constituent inside the image, in constituent order; a pixel may repeat and its
  value is the sum of its entries. Pixel indices and the compaction are compiled
  loops (:mod:`jettf.images.kernels`), a few nanoseconds per constituent.
- merged (``merge=True``, and always for specs with a non-additive channel such as
  ``mass``): unique pixels, ascending. The constituents' flat pixel keys
  ``pixel * M + slot`` are sorted along the constituent axis; equal pixels become
  neighbours, a cumulative sum of "new pixel" flags gives each constituent its
  sparse slot, and one ``np.bincount`` per summed quantity adds them up in float64
  before the channel's value is computed.

Jets go through in blocks of about :data:`BLOCK_ELEMENTS` constituent slots so the
``[B, M]`` float64 arrays of the centring/rotation steps stay in the CPU cache (a loop
over blocks, not jets). Dense images are the sparse ones added into zeros. Subjets
(leading_subjet centring, subjet rotation) come from FastJet's compiled multi-event
clustering. Geometry runs in float64; outputs are float32.
"""

from __future__ import annotations

import types
from typing import NamedTuple

import numpy as np

from . import channels as _channels
from .preprocess import SUBJET_R, Constituents, Subjets, bin_edges, image_coordinates, needs_subjets

__all__ = ["SparseImages", "render", "densify"]

#: Constituent slots (jets x M) per block: a block's [B, M] float64 arrays (256 kB) stay in the
#: L2 cache, which makes the numpy steps 2-4x faster than on whole-batch arrays (measured at
#: M = 30: 16k-64k slots per block are equally fast, 262k is 40% slower).
BLOCK_ELEMENTS = 32_768


class SparseImages(NamedTuple):
    """Sparse jet images, one row per jet (numpy arrays, or tensors from ``render_tf``).

    The first ``count`` entries of a row are used; a pixel's value is the sum of the
    values of its entries (densify adds), so a pixel may appear more than once.

    Attributes:
        index: int32 ``[N, K]`` flat pixel indices ``eta_bin * npix + phi_bin`` in the
            first ``count`` entries, 0 after. Per-constituent layout (``render`` of an
            additive spec): one entry per constituent inside the image, in constituent
            order, pixels may repeat. Merged layout (``render(..., merge=True)``, specs with
            a non-additive channel, and ``render_tf``): unique pixels, ascending.
        values: float32 ``[N, K, C]`` channel values of those entries, 0 after ``count``.
        count: int32 ``[N]`` number of used entries (merged layout: non-empty pixels).
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


def render(batch, spec, sparse: bool = False, merge: bool = None):
    """Render a JetBatch with an ImageSpec.

    Returns dense float32 ``[N, npix, npix, C]`` (axis 1 = eta, axis 2 = phi), or with
    ``sparse=True`` a :class:`SparseImages` with ``K = batch.max_constituents``. The
    number of constituents dropped outside the image is only in the sparse form.
    Charged channels take ``batch.charge``, else ``batch.pid`` (see
    :func:`jettf.images.channels.constituent_charge`); the subdetector channels take
    ``batch.subdetector`` (see :func:`jettf.images.channels.constituent_subdetector`).

    ``merge``: sparse layout. ``None`` (default): one entry per constituent when every
    channel is additive (:func:`jettf.images.channels.additive`: pt, energy, charged_pt,
    neutral_pt, charged_multiplicity, tracks, ecal, hcal, em, had; with or without l1
    normalization), else unique pixels. ``True``: unique pixels, ascending (the layout of
    ``render_tf``). ``False`` for a spec with a non-additive channel is an error. Dense
    images are the same either way (up to float32 rounding of the per-pixel sum).
    """
    additive = _channels.additive(spec.channels)
    if merge is None:
        merge = not additive
    elif not merge and not additive:
        bad = [name for name in spec.channels if not _channels.additive((name,))]
        raise ValueError(f"render: merge=False needs additive channels; {bad} are functions of per-pixel sums "
                         "(the mass of a sum is not the sum of masses)")
    charged = subdetector = subjets = None
    if _channels.needs_charge(spec.channels):
        charged = np.asarray(_channels.constituent_charge(batch)) != 0
    if _channels.needs_subdetector(spec.channels):
        subdetector = np.asarray(_channels.constituent_subdetector(batch, spec.channels))
    if needs_subjets(spec):
        subjets = _fastjet_subjets(_constituents(batch, slice(None), charged, subdetector))
    from . import kernels  # numba: imported (and compiled, or loaded from its cache) on first use

    n, m = batch.pt.shape
    index = np.zeros((n, m), np.int32)
    values = np.zeros((n, m, spec.n_channels), np.float32)
    count, n_outside = np.zeros(n, np.int32), np.zeros(n, np.int32)
    edges, n_pixels = bin_edges(spec.npix, spec.extent), spec.npix**2
    entries = _sum_per_pixel if merge else kernels.per_constituent
    block = max(1, BLOCK_ELEMENTS // max(m, 1))
    for lo in range(0, n, block):
        rows = slice(lo, min(n, lo + block))
        c = _constituents(batch, rows, charged, subdetector)
        x, y = image_coordinates(NP_OPS, c, spec, None if subjets is None else Subjets(*(a[rows] for a in subjets)))
        pix, n_outside[rows] = kernels.pixel_index(x, y, c.mask, edges)
        quantities = {q: _channels.QUANTITIES[q](c, NP_OPS) for q in _channels.quantities_for(spec.channels)}
        index[rows], sums, count[rows] = entries(pix, n_pixels, quantities)
        values[rows] = _channels.pixel_values(NP_OPS, spec, sums)
    images = SparseImages(index, values, count, n_outside)
    return images if sparse else densify(images, spec.npix)


def _constituents(batch, rows, charged, subdetector) -> Constituents:
    """float64 :class:`Constituents` of the jets ``rows`` (a slice)."""
    f64 = lambda a: np.asarray(a[rows], dtype=np.float64)  # noqa: E731
    return Constituents(
        f64(batch.pt), f64(batch.eta), f64(batch.phi), f64(batch.energy), np.asarray(batch.mask[rows], bool),
        None if charged is None else f64(charged), f64(batch.jet_eta), f64(batch.jet_phi),
        None if subdetector is None else f64(subdetector),
    )


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
    """Dense float32 images ``[N, npix, npix, C]`` from numpy :class:`SparseImages`; entries of the
    same pixel add up (in float32, in entry order), entries past ``count`` are ignored."""
    index, values, count = np.asarray(sparse.index), np.asarray(sparse.values), np.asarray(sparse.count)
    n, k = index.shape
    channels = values.shape[-1]
    used = np.arange(k) < count[:, None]
    if used.any() and (index[used].max() >= npix * npix or index[used].min() < 0):
        bad = index[used].max() if index[used].max() >= npix * npix else index[used].min()
        raise ValueError(f"densify: pixel index {bad} does not fit npix={npix} (expected 0 <= index < {npix * npix})")
    out = np.zeros(n * npix * npix * channels, dtype=np.float32)
    rows, slots = np.nonzero(used)
    flat = (rows.astype(np.int64) * (npix * npix) + index[rows, slots]) * channels
    entries = values[rows, slots].astype(np.float32, copy=False)
    for c in range(channels):
        # Assigning first maps the zero pages with one write fault each (ufunc.at alone reads, then
        # writes: two faults per page, ~2x slower at 299x299); ufunc.at then adds repeated pixels up.
        out[flat + c] = 0.0
        np.add.at(out, flat + c, entries[:, c])
    return out.reshape(n, npix, npix, channels)
