"""Constituent preprocessing and pixel binning, shared by the numpy and TensorFlow renderers.

Steps, in order (001 section 3.1; 002 section 2.2), all on constituents before pixelation:

1. Relative coordinates: ``eta - jet_eta`` and the wrapped ``phi - jet_phi``.
2. Centre (``spec.center``): subtract the pt-weighted centroid, the hardest
   constituent, or the leading subjet (see :data:`SUBJET_ALGORITHM`); phi re-wrapped.
   After centring and after rotation, coordinates within :data:`ON_AXIS` of an
   axis are set to 0 (see ``_snap``).
3. Rotate (``spec.rotate``) about the image centre so an axis points along +eta:
   ``"principal_axis"``: the major axis of the pt-weighted (eta, phi) covariance,
   its sign chosen so more pt lies on the +eta side of the centre;
   ``"subjet"``: the direction from the leading to the second subjet (no rotation
   when there is only one subjet). Rotation acts on (eta, phi) as a plane; pixel
   values still come from the constituents' own four-momenta.
4. Flip (``spec.flip``): phi -> -phi where the constituents at phi < 0 carry more
   pt than those at phi > 0, so the harder half is at +phi (001 section 3.1).
5. Bin: the edges of ``numpy.histogram2d(x, y, bins=npix, range=[[-e, e], [-e, e]])``,
   i.e. half-open bins ``[lo, hi)`` except the last, which includes ``+e``.
   Constituents outside ``[-e, e]^2`` are dropped and counted.

Centring, rotation and flip use all real constituents, also those that end
up outside the image. Every function takes ``ops``, the renderer's array
namespace (numpy or TensorFlow), with: ``where, sum(x, axis, keepdims=False),
abs, floor, atan2, cos, sin, sinh, sign, sqrt, maximum, minimum,
argmax(x, axis), take(x [N, M], i [N]) -> [N], gather(table, i), to_int,
stack(xs, axis), constant(numpy array)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "CENTERS",
    "ROTATIONS",
    "NORMALIZATIONS",
    "SUBJET_ALGORITHM",
    "SUBJET_R",
    "DEFINITIONS",
    "Constituents",
    "Subjets",
    "needs_subjets",
    "image_coordinates",
    "bin_edges",
    "pixel_index",
]

CENTERS = ("pt_centroid", "hardest", "leading_subjet")
ROTATIONS = ("principal_axis", "subjet")
NORMALIZATIONS = ("l1",)

# Subjets for centring and rotation: inclusive kT subjets with R = 0.2, E-scheme
# recombination, rapidity-azimuth distances (FastJet's conventions), ordered by pt.
# The review (001 section 3.1) asks for "a small R-parameter jet algorithm"; kT
# subjets as in Cogan et al. (JHEP 02 (2015) 118) and de Oliveira et al.
# (JHEP 07 (2016) 069), with R = 0.2 so R = 0.4 jets still resolve two subjets.
SUBJET_ALGORITHM = "kt"
SUBJET_R = 0.2
ON_AXIS = 1e-12  # rad; image coordinates closer than this to an axis are set to 0

PI = np.pi
TWO_PI = 2.0 * np.pi

# Fixed definitions behind every image; part of ImageSpec.fingerprint().
DEFINITIONS = {
    "version": 1,
    "binning": "numpy.histogram2d edges, last bin closed",
    "subjets": {"algorithm": SUBJET_ALGORITHM, "R": SUBJET_R, "recombination": "E_scheme", "order": "pt"},
    "rotation_axis": "+eta",
    "flip_side": "+phi",
    "on_axis": ON_AXIS,
}


class Constituents(NamedTuple):
    """Constituent arrays ``[N, M]`` (GeV, -, rad, GeV, bool, 0/1) and the jet axis ``[N]``;
    ``subdetector``: the JetBatch tags as float64 ``[N, M]`` (None unless a channel needs them)."""

    pt: Any
    eta: Any
    phi: Any
    energy: Any
    mask: Any
    charged: Any
    jet_eta: Any
    jet_phi: Any
    subdetector: Any = None


class Subjets(NamedTuple):
    """The two hardest subjets' ``eta``, ``phi`` ``[N, 2]`` (absolute) and how many exist, ``n`` ``[N]`` (0-2)."""

    eta: Any
    phi: Any
    n: Any


def needs_subjets(spec) -> bool:
    return spec.center == "leading_subjet" or spec.rotate == "subjet"


def wrap_phi(ops, x):
    """Angles wrapped to [-pi, pi] (exactly ``x`` where it is already inside)."""
    return x - TWO_PI * ops.floor((x + PI) / TWO_PI)


def image_coordinates(ops, c: Constituents, spec, subjets: Subjets = None):
    """Constituent (eta, phi) in the image frame, each ``[N, M]``, after centring, rotation and flip."""
    w = ops.where(c.mask, c.pt, 0.0)
    x = c.eta - c.jet_eta[:, None]
    y = wrap_phi(ops, c.phi - c.jet_phi[:, None])
    if subjets is not None:
        sub_x = subjets.eta - c.jet_eta[:, None]
        sub_y = wrap_phi(ops, subjets.phi - c.jet_phi[:, None])
    if spec.center is not None:
        if spec.center == "pt_centroid":
            cx, cy = _centroid(ops, w, x, y)
        elif spec.center == "hardest":
            has = ops.sum(w, axis=1) > 0
            i = ops.argmax(ops.where(c.mask, c.pt, -1.0), axis=1)
            cx, cy = ops.where(has, ops.take(x, i), 0.0), ops.where(has, ops.take(y, i), 0.0)
        else:  # leading_subjet
            has = subjets.n >= 1
            cx, cy = ops.where(has, sub_x[:, 0], 0.0), ops.where(has, sub_y[:, 0], 0.0)
        x, y = _snap(ops, x - cx[:, None], wrap_phi(ops, y - cy[:, None]))
    if spec.rotate is not None:
        if spec.rotate == "principal_axis":
            angle = _principal_axis_angle(ops, w, x, y)
        else:  # subjet
            dy = wrap_phi(ops, sub_y[:, 1] - sub_y[:, 0])
            angle = ops.where(subjets.n >= 2, ops.atan2(dy, sub_x[:, 1] - sub_x[:, 0]), 0.0)
        cos, sin = ops.cos(angle)[:, None], ops.sin(angle)[:, None]
        x, y = _snap(ops, cos * x + sin * y, cos * y - sin * x)
    if spec.flip:
        harder_below = ops.sum(w * ops.sign(y), axis=1) < 0
        y = ops.where(harder_below[:, None], -y, y)
    return x, y


def _snap(ops, x, y):
    """Coordinates within ON_AXIS of an axis set to 0. Centring and rotation put points on the
    axes (a one-particle leading or second subjet) only up to rounding, and the axes are bin
    edges for even npix: snapping keeps rounding from deciding a bin, a rotation sign or the flip."""
    return ops.where(ops.abs(x) < ON_AXIS, 0.0, x), ops.where(ops.abs(y) < ON_AXIS, 0.0, y)


def _centroid(ops, w, x, y):
    total = ops.sum(w, axis=1)
    safe = ops.where(total > 0, total, 1.0)
    return ops.sum(w * x, axis=1) / safe, ops.sum(w * y, axis=1) / safe


def _principal_axis_angle(ops, w, x, y):
    """Angle (from +eta towards +phi) of the major axis of the pt-weighted covariance, signed so
    more pt lies on its positive side; 0 when the covariance is isotropic or empty."""
    mx, my = _centroid(ops, w, x, y)
    dx, dy = x - mx[:, None], y - my[:, None]
    sxx, syy, sxy = (ops.sum(w * a * b, axis=1) for a, b in ((dx, dx), (dy, dy), (dx, dy)))
    angle = 0.5 * ops.atan2(2.0 * sxy, sxx - syy)
    side = ops.sum(w * ops.sign(x * ops.cos(angle)[:, None] + y * ops.sin(angle)[:, None]), axis=1)
    return ops.where(side < 0, angle + PI, angle)


def bin_edges(npix: int, extent: float) -> np.ndarray:
    """The ``npix + 1`` bin edges over ``[-extent, extent]``, exactly numpy.histogram2d's (float64)."""
    return np.linspace(-extent, extent, npix + 1)


def pixel_index(ops, x, y, mask, npix: int, extent: float):
    """Flat pixel index ``eta_bin * npix + phi_bin`` ``[N, M]`` (int32; ``npix**2`` for padding and
    constituents outside the image) and the number of real constituents outside, ``[N]``.
    The numpy renderer runs the compiled equivalent, :func:`jettf.images.kernels.pixel_index`."""
    edges = bin_edges(npix, extent)
    bx, in_x = _bin(ops, x, edges)
    by, in_y = _bin(ops, y, edges)
    inside = mask & in_x & in_y
    pix = ops.where(inside, bx * npix + by, npix * npix)
    n_outside = ops.sum(ops.to_int(mask & ~inside), axis=1)
    return pix, n_outside


def _bin(ops, x, edges):
    """Bin of each value with histogram2d's convention, and whether it lies in [edges[0], edges[-1]]."""
    npix = len(edges) - 1
    inside = (x >= edges[0]) & (x <= edges[-1])
    x = ops.where(inside, x, 0.0)
    k = ops.minimum(ops.to_int(ops.floor((x - edges[0]) * (npix / (edges[-1] - edges[0])))), npix - 1)
    # The arithmetic bin can be one off from searchsorted within rounding of an edge; correct it.
    table = ops.constant(edges)
    k = k - ops.to_int(x < ops.gather(table, k))
    k = k + ops.to_int((x >= ops.gather(table, k + 1)) & (k < npix - 1))
    return k, inside
