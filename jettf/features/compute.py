"""`compute_features`: a JetBatch in, a float32 feature matrix and its column names out."""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from .ecf import constituent_limits, correlator_sums, ecf_requests, series_columns
from .efp import efp_columns, efp_graph_names
from .nsubjettiness import nsubjettiness, rapidity
from .spec import FeatureSpec, _fmt

__all__ = ["compute_features", "feature_validity", "DegenerateJetWarning"]

_JET_BLOCK = 1024  # jets per outer block: bounds the memory of the N-subjettiness step
_GROUP_ELEMENTS = 1 << 18  # jets x width^2 per correlator group (2 MiB per [G, w, w] float64 array: cache-sized)
_WIDTH_STEP = 8  # jets are grouped by constituent count rounded up to this step


class DegenerateJetWarning(UserWarning):
    """Some jets have fewer constituents than some features need; those features are 0."""


def compute_features(batch, spec: Optional[FeatureSpec] = None):
    """Global features of every jet in ``batch``.

    Args:
        batch: a :class:`jettf.jets.JetBatch`.
        spec: a :class:`FeatureSpec`; ``None`` gives the EffNet-S set.

    Returns:
        ``(values, names)``: float32 ``[N, F]`` and the ``F`` column names
        (``spec.names()``). A feature is 0 for jets with fewer constituents than
        it needs (``spec.min_constituents()``); a :class:`DegenerateJetWarning`
        gives the count, and :func:`feature_validity` the mask.
    """
    spec = FeatureSpec() if spec is None else spec
    names = spec.names()
    values = np.zeros((len(batch), len(names)), dtype=np.float32)
    for start in range(0, len(batch), _JET_BLOCK):
        block = batch.select(slice(start, start + _JET_BLOCK))
        columns = _block_columns(block, spec)
        values[start : start + len(block)] = np.stack([columns[n] for n in names], axis=1)
    valid, _ = feature_validity(batch, spec)
    values[~valid] = 0.0
    _warn_degenerate(batch, spec, valid)
    return values, names


def feature_validity(batch, spec: Optional[FeatureSpec] = None):
    """``(valid, names)``: bool ``[N, F]``, True where the jet has enough constituents for the feature.

    Invalid entries of :func:`compute_features` are 0 by definition.
    """
    spec = FeatureSpec() if spec is None else spec
    needs = spec.min_constituents()
    names = list(needs)
    minimum = np.array([needs[n] for n in names], dtype=np.int64)
    return batch.n_constituents[:, None] >= minimum[None, :], names


# --------------------------------------------------------------------- internals
def _block_columns(batch, spec) -> dict:
    """name -> float64 [J] for one block of jets."""
    counts = batch.n_constituents
    cols = {}
    if spec.kinematics:
        cols.update(jet_pt=batch.jet_pt, jet_eta=batch.jet_eta, jet_phi=batch.jet_phi, jet_mass=batch.jet_mass,
                    n_constituents=counts)
    e, px, py, pz = _cartesian(batch)
    if spec.tau_ratios:
        ns = sorted({n for r in spec.tau_ratios for n in (r, r - 1)})
        p4 = np.stack([e, px, py, pz], axis=-1)[batch.mask]
        taus = nsubjettiness(p4, counts, ns, spec.tau_betas, spec.jet_radius, spec.tau_axes)
        for n in spec.tau_ratios:
            for b in spec.tau_betas:
                num, den = taus[(n, b)], taus[(n - 1, b)]
                ratio = np.zeros_like(num)
                np.divide(num, den, out=ratio, where=den > 0)
                cols[f"tau{n}{n - 1}_b{_fmt(b)}"] = ratio
    if spec.efp_dmax or any(ecf_requests(spec).values()):
        mask = batch.mask
        pt = np.where(mask, np.hypot(px, py), 0.0)
        y = np.where(mask, rapidity(e, px, py, pz), 0.0)
        phi = np.where(mask, np.arctan2(py, px), 0.0)
        order = np.argsort(np.where(mask, -pt, np.inf), axis=1, kind="stable")
        pt, y, phi = (np.take_along_axis(a, order, axis=1) for a in (pt, y, phi))
        cols.update(_grouped_columns(pt, y, phi, counts, spec, [n for n in spec.names() if n not in cols]))
    return cols


def _cartesian(batch):
    """Constituent (E, px, py, pz) as float64 ``[J, M]`` (GeV), computed as fastjet receives them."""
    pt = batch.pt.astype(np.float64)
    phi = batch.phi.astype(np.float64)
    return batch.energy.astype(np.float64), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(batch.eta.astype(np.float64))


def _grouped_columns(pt, y, phi, counts, spec, names) -> dict:
    """Correlator series and EFPs (``names``) for pt-sorted constituents ``[J, M]``.

    Each constituent set (all; and, only where the spec truncates, the hardest
    ``ecfg3_max_constituents`` / ``ecf4_max_constituents``) is processed in groups of
    jets of similar size, so padding stays small and the arrays of a group stay
    cache-sized; the triplet and quadruplet loops stop at each jet's own count.
    """
    requests = ecf_requests(spec)
    limits = constituent_limits(spec)
    sums = {key: {r: np.zeros(len(counts)) for r in requests[key]} for key in limits}
    efps = np.zeros((len(counts), len(efp_graph_names(spec.efp_dmax)))) if spec.efp_dmax else None
    for key, limit in limits.items():
        if not requests[key] and (key != "all" or efps is None):
            continue
        sizes = counts if limit is None else np.minimum(counts, limit)
        for idx, w in _groups(sizes, pt.shape[1] if limit is None else min(limit, pt.shape[1])):
            z = _fractions(pt[idx, :w])
            theta = _pairwise_delta_r(y[idx, :w], phi[idx, :w])
            for r, v in correlator_sums(theta, z, requests[key], sizes[idx]).items():
                sums[key][r][idx] = v
            if key == "all" and efps is not None:
                efps[idx] = efp_columns(theta, z, spec.efp_dmax, spec.efp_beta)
    cols = series_columns(spec, sums)
    if efps is not None:
        cols.update(zip(efp_graph_names(spec.efp_dmax), efps.T))
    return {name: cols[name] for name in names}


def _groups(sizes, max_width):
    """``(jet indices, width)`` groups: jets with ``sizes`` rounded up to the same step, at most
    ``_GROUP_ELEMENTS / width^2`` per group; jets of size 0 are left out."""
    order = np.argsort(sizes, kind="stable")
    order = order[sizes[order] > 0]
    width = np.minimum(-(-sizes[order] // _WIDTH_STEP) * _WIDTH_STEP, max_width)
    for run in np.split(order, np.flatnonzero(np.diff(width)) + 1):
        if len(run):
            w = int(min(-(-sizes[run[-1]] // _WIDTH_STEP) * _WIDTH_STEP, max_width))
            step = max(1, _GROUP_ELEMENTS // (w * w))
            for s in range(0, len(run), step):
                yield run[s : s + step], w


def _pairwise_delta_r(y, phi):
    """``[G, w, w]`` Delta R_ij = sqrt(Delta y^2 + Delta phi^2), Delta phi wrapped to [0, pi]."""
    dphi = phi[:, :, None] - phi[:, None, :]
    np.abs(dphi, out=dphi)
    np.minimum(dphi, 2.0 * np.pi - dphi, out=dphi)
    dphi *= dphi
    dy = y[:, :, None] - y[:, None, :]
    dy *= dy
    dy += dphi
    return np.sqrt(dy, out=dy)


def _fractions(pt):
    """Momentum fractions z_i = pt_i / sum_j pt_j per row (0 for a row without pt)."""
    total = pt.sum(axis=1, keepdims=True)
    z = np.zeros_like(pt)
    np.divide(pt, total, out=z, where=total > 0)
    return z


def _warn_degenerate(batch, spec, valid):
    bad = ~valid.all(axis=1)
    if not bad.any():
        return
    needs = spec.min_constituents()
    n = batch.n_constituents
    thresholds = sorted(set(needs.values()) - {0})
    counts = {t: int((n < t).sum()) for t in thresholds if (n < t).any()}
    detail = ", ".join(f"{c} with n < {t}" for t, c in counts.items())
    warnings.warn(
        f"compute_features: {int(bad.sum())} of {len(batch)} jets have fewer constituents than some features "
        f"need ({detail}); those features are set to 0 (see jettf.features.feature_validity)",
        DegenerateJetWarning,
        stacklevel=3,
    )
