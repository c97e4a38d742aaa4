"""TensorFlow renderer: the numpy renderer's images from TensorFlow ops only.

Same preprocessing and channel definitions as the numpy renderer (shared in
:mod:`.preprocess` and :mod:`.channels`), batched over jets with static-rank
tensors: no Python loop over jets or particles, traceable by ``tf.function``
(XLA included), usable in ``tf.data`` maps and in SavedModel serving
signatures. Geometry and sums run in float64 so the mass channel, which
cancels as E^2 - p^2 for m << E, agrees with numpy; outputs are float32.
"""

from __future__ import annotations

import types

import numpy as np
import tensorflow as tf

from . import channels as _channels
from .preprocess import SUBJET_R, Constituents, Subjets, image_coordinates, needs_subjets, pixel_index, wrap_phi
from .render_numpy import SparseImages

__all__ = ["render_tf"]



def _where(condition, a, b):
    """``tf.where`` that gives a Python number the other branch's dtype, as ``np.where`` does."""
    if not tf.is_tensor(a):
        a = tf.cast(a, b.dtype)
    elif not tf.is_tensor(b):
        b = tf.cast(b, a.dtype)
    return tf.where(condition, a, b)


TF_OPS = types.SimpleNamespace(
    where=_where,
    sum=lambda x, axis, keepdims=False: tf.reduce_sum(x, axis=axis, keepdims=keepdims),
    abs=tf.abs,
    floor=tf.floor,
    atan2=tf.atan2,
    cos=tf.cos,
    sin=tf.sin,
    sinh=lambda x: 0.5 * (tf.exp(x) - tf.exp(-x)),  # tf.sinh in float64 has no ONNX Runtime kernel (exported graphs)
    sign=tf.sign,
    sqrt=tf.sqrt,
    maximum=tf.maximum,
    minimum=tf.minimum,
    argmax=lambda x, axis: tf.argmax(x, axis=axis, output_type=tf.int32),
    take=lambda x, i: tf.gather(x, i, batch_dims=1),
    gather=tf.gather,
    to_int=lambda x: tf.cast(x, tf.int32),
    stack=tf.stack,
    constant=lambda a: tf.constant(a, dtype=tf.float64),
)


def render_tf(pt, eta, phi, energy, mask, jet_eta, jet_phi, spec, charge=None, sparse=False, subdetector=None):
    """Render jets with TensorFlow ops.

    Args:
        pt, eta, phi, energy: constituents ``[N, M]`` (GeV, -, rad, GeV), or ``[M]`` for one jet.
        mask: bool like ``pt``, True for real constituents; ``None`` means ``pt > 0``.
        jet_eta, jet_phi: jet axis ``[N]`` (or scalars for one jet).
        spec: an :class:`ImageSpec` (a Python constant at trace time).
        charge: constituent charges like ``pt`` (units of e); needed by the charged channels.
        sparse: return a :class:`SparseImages` of tensors instead of dense images.
        subdetector: ``JetBatch.subdetector`` tags like ``pt``; needed by ``tracks``, ``ecal``,
            ``hcal``, ``em``, ``had`` (see :mod:`jettf.images.channels`).

    Returns:
        float32 ``[N, npix, npix, C]`` (``[npix, npix, C]`` for one jet), or SparseImages
        with ``K = M``. From raw constituents ``c`` ``[N, M, 4]`` = (pt, eta, phi, energy)::

            render_tf(*tf.unstack(c, axis=-1), None, jet_eta, jet_phi, spec)
    """
    single = tf.convert_to_tensor(pt).shape.rank == 1
    f64 = lambda a: tf.cast(a[None] if single else a, tf.float64)  # noqa: E731
    pt, eta, phi, energy, jet_eta, jet_phi = map(f64, (pt, eta, phi, energy, jet_eta, jet_phi))
    mask = pt > 0 if mask is None else tf.cast(mask[None] if single else mask, tf.bool)
    charged = None
    if _channels.needs_charge(spec.channels):
        if charge is None:
            raise ValueError(
                f"render_tf: channels {list(spec.channels)} need `charge` (like `pt`, units of e); got None"
            )
        charged = tf.cast(f64(charge) != 0, tf.float64)
    tags = None
    if _channels.needs_subdetector(spec.channels):
        if subdetector is None:
            raise ValueError(
                f"render_tf: channels {list(spec.channels)} need `subdetector` (JetBatch.subdetector tags like "
                "`pt`); got None"
            )
        tags = f64(subdetector)
    c = Constituents(pt, eta, phi, energy, mask, charged, jet_eta, jet_phi, tags)
    subjets = _kt_subjets(pt, eta, phi, energy, mask) if needs_subjets(spec) else None
    x, y = image_coordinates(TF_OPS, c, spec, subjets)
    pix, n_outside = pixel_index(TF_OPS, x, y, mask, spec.npix, spec.extent)
    names = _channels.quantities_for(spec.channels)
    quantities = tf.stack([_channels.QUANTITIES[q](c, TF_OPS) for q in names], axis=-1)
    index, sums, count = _sum_per_pixel(pix, spec.npix**2, quantities)
    values = _channels.pixel_values(TF_OPS, spec, dict(zip(names, tf.unstack(sums, num=len(names), axis=-1))))
    images = SparseImages(index, tf.cast(values, tf.float32), count, n_outside)
    if not sparse:  # the one densify of models and pipelines (padding entries are (0, 0): they add nothing)
        from .preparation import ImagePreparation

        dense = ImagePreparation(spec, name="densify").densify(images.index, images.values)
        return dense[0] if single else dense
    return SparseImages(*(a[0] for a in images)) if single else images


def _sum_per_pixel(pix, n_pixels, quantities):
    """Unique pixels per jet (int32 ``[N, M]``), per-pixel sums ``[N, M, Q]`` and counts ``[N]``;
    the algorithm of the numpy renderer (sort pixel keys per jet, cumulative sum of new-pixel flags)."""
    n, m = tf.shape(pix)[0], tf.shape(pix)[1]
    m64 = tf.cast(m, tf.int64)
    keys = tf.sort(tf.cast(pix, tf.int64) * m64 + tf.range(m64)[None], axis=1)
    spix, slot = tf.cast(keys // m64, tf.int32), tf.cast(keys % m64, tf.int32)
    kept = spix < n_pixels
    previous = tf.concat([tf.fill([n, 1], -1), spix[:, :-1]], axis=1)
    new = kept & tf.not_equal(spix, previous)
    target = tf.cumsum(tf.cast(new, tf.int32), axis=1) - 1 + tf.range(n)[:, None] * m
    target = tf.where(kept, target, n * m)  # one extra segment collects dropped constituents
    # Scatter-adds over flat ids: the segment sums, in the form ONNX expresses as ScatterND(reduction="add")
    # (tf2onnx turns segment sums into one-hot products, quadratic in the batch).
    flat_target = tf.reshape(target, [-1, 1])
    gathered = tf.reshape(tf.gather(quantities, slot, batch_dims=1), [-1, quantities.shape[-1]])
    sums = tf.tensor_scatter_nd_add(tf.zeros([n * m + 1, quantities.shape[-1]], gathered.dtype), flat_target, gathered)
    # Each segment's pixel: its first entry's (a segment-max would do, but has no ONNX form).
    pixels = tf.tensor_scatter_nd_add(tf.zeros([n * m + 1], spix.dtype), flat_target,
                                      tf.reshape(tf.where(new, spix, 0), [-1]))
    count = tf.reduce_sum(tf.cast(new, tf.int32), axis=1)
    used = tf.range(m)[None] < count[:, None]
    index = tf.where(used, tf.reshape(pixels[:-1], [n, m]), 0)
    return index, tf.reshape(sums[:-1], [n, m, quantities.shape[-1]]), count


@tf.function(autograph=False, reduce_retracing=True)
def _kt_subjets(pt, eta, phi, energy, mask) -> Subjets:
    """The two hardest inclusive kT subjets (R = SUBJET_R, E-scheme), by batched pairwise clustering.

    Reproduces FastJet's ``kt_algorithm`` (rapidity-azimuth distances, E-scheme): each step
    takes, per jet, the smallest of the pair distances d_ij and the beam distances d_iB = pt_i^2
    and either merges the pair or makes a final subjet, for ``max(n_constituents)`` steps. The
    ``[N, M, M]`` d_ij matrix is kept and only the changed pseudojet's row and column rewritten,
    so a step costs one pass over the matrix (its argmin): O(M^3) per jet in all, cheap for
    M <= ~100 on an accelerator. A tf.function so that eager callers run the loop as a graph too.
    """
    p = tf.stack([pt * tf.cos(phi), pt * tf.sin(phi), pt * tf.sinh(eta), energy], axis=-1)
    p = p * tf.cast(mask, tf.float64)[..., None]
    # Two empty slots so there are always two candidate subjets, also for M < 2.
    n = tf.shape(p)[0]
    p = tf.concat([p, tf.zeros([n, 2, 4], tf.float64)], axis=1)
    mask = tf.concat([mask, tf.zeros([n, 2], tf.bool)], axis=1)
    m = tf.shape(p)[1]
    inf = tf.constant(np.inf, tf.float64)
    one_hot = lambda k: tf.one_hot(k, m, on_value=True, off_value=False)  # noqa: E731
    pt2, y, azimuth = _kinematics(p)
    d = _kt_distance(tuple(a[:, :, None] for a in (pt2, y, azimuth)), tuple(a[:, None] for a in (pt2, y, azimuth)))
    d = tf.where(mask[:, :, None] & mask[:, None, :] & ~tf.eye(m, dtype=tf.bool), d, inf)

    def step(p, active, final, d):
        beam_d = tf.where(active, p[..., 0] ** 2 + p[..., 1] ** 2, inf)
        flat = tf.reshape(d, [n, m * m])
        pair, beam = tf.argmin(flat, axis=1, output_type=tf.int32), tf.argmin(beam_d, axis=1, output_type=tf.int32)
        merge = tf.gather(flat, pair, batch_dims=1) < tf.gather(beam_d, beam, batch_dims=1)
        i, j = pair // m, pair % m
        finished = one_hot(beam) & (~merge & tf.reduce_any(active, axis=1))[:, None]
        p = p + tf.cast(one_hot(i) & merge[:, None], tf.float64)[..., None] * tf.gather(p, j, batch_dims=1)[:, None, :]
        removed, changed = tf.where(merge, j, beam), tf.where(merge, i, beam)
        active = active & ~one_hot(removed)
        pt2, y, azimuth = _kinematics(p)
        row = _kt_distance(
            tuple(tf.gather(a, changed, batch_dims=1)[:, None] for a in (pt2, y, azimuth)), (pt2, y, azimuth)
        )
        row = tf.where(active & ~one_hot(changed) & merge[:, None], row, inf)
        d = _set_row_and_column(d, removed, tf.fill([n, m], inf))
        return p, active, final | finished, _set_row_and_column(d, changed, row)

    steps = tf.reduce_max(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1))
    _, p, _, final, _ = tf.while_loop(
        lambda k, *state: k < steps,
        lambda k, *state: (k + 1, *step(*state)),
        (tf.constant(0), p, mask, tf.zeros_like(mask), d),
    )
    _, top = tf.math.top_k(tf.where(final, p[..., 0] ** 2 + p[..., 1] ** 2, -1.0), k=2)
    n_sub = tf.minimum(tf.reduce_sum(tf.cast(final, tf.int32), axis=1), 2)
    exists = tf.range(2)[None] < n_sub[:, None]
    sub = tf.where(exists[..., None], tf.gather(p, top, batch_dims=1), 0.0)  # missing subjets: zeros, as numpy's
    eta = tf.asinh(tf.math.divide_no_nan(sub[..., 2], tf.sqrt(sub[..., 0] ** 2 + sub[..., 1] ** 2)))
    return Subjets(eta, tf.atan2(sub[..., 1], sub[..., 0]), n_sub)


def _kinematics(p):
    """(pt^2, rapidity, phi) of four-momenta ``[..., 4]`` = (px, py, pz, E)."""
    pt2 = p[..., 0] ** 2 + p[..., 1] ** 2
    return pt2, _rapidity(p, pt2), tf.atan2(p[..., 1], p[..., 0])


def _kt_distance(a, b):
    """kT distance min(pt_a^2, pt_b^2) dR^2 / R^2 between broadcastable (pt^2, y, phi) triples."""
    dr2 = (a[1] - b[1]) ** 2 + wrap_phi(TF_OPS, a[2] - b[2]) ** 2
    return tf.minimum(a[0], b[0]) * dr2 / SUBJET_R**2


def _set_row_and_column(d, k, values):
    """``d[n, k[n], :] = d[n, :, k[n]] = values[n]`` for a batch of square matrices ``d`` ``[N, M, M]``."""
    n, m = tf.shape(d)[0], tf.shape(d)[1]
    rows = tf.range(n)
    d = tf.tensor_scatter_nd_update(d, tf.stack([rows, k], axis=-1), values)
    grid = tf.stack(tf.meshgrid(rows, tf.range(m), indexing="ij") + [tf.broadcast_to(k[:, None], [n, m])], axis=-1)
    return tf.tensor_scatter_nd_update(d, grid, values)


def _rapidity(p, pt2):
    """FastJet's rapidity: sign(pz) * log((E + |pz|) / m_T) with m^2 clipped at 0."""
    e, pz = p[..., 3], p[..., 2]
    mt2 = pt2 + tf.maximum(e * e - pt2 - pz * pz, 0.0)
    plus = e + tf.abs(pz)
    return tf.sign(pz) * 0.5 * tf.math.log(tf.where(mt2 > 0, plus * plus / tf.where(mt2 > 0, mt2, 1.0), 1.0))
