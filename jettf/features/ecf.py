"""Energy-correlation functions and their series, vectorized over a group of jets.

Definitions follow fastjet-contrib's EnergyCorrelator with the ``pt_R`` measure
(Larkoski, Salam, Thaler, arXiv:1305.0007; Moult, Necib, Thaler,
arXiv:1609.07483): with z_i = pt_i / sum_j pt_j and theta_ij = Delta R_ij
(rapidity-azimuth distance),

    ECFN(N, beta)    = sum_{i1<..<iN} z_i1 .. z_iN  prod_{pairs} theta^beta
    ECFG(v, N, beta) = sum_{i1<..<iN} z_i1 .. z_iN  prod_{m=1..v} (m-th smallest theta)^beta

and ECFG(-1, N) = ECFN(N), ECFG(1, 2) = ECFN(2). The series are

    C_N = ECFN(N-1) ECFN(N+1) / ECFN(N)^2       D_2^(a,b) = ECFN(3,a) / ECFN(2,b)^(3a/b)
    U_n = ECFG(1, n+1)      M_n = ECFG(1, n+1) / ECFG(1, n)      N_n = ECFG(2, n+1) / ECFG(1, n)^2

with ECFN(0) = ECFN(1) = 1, M_1 = ECFG(1, 2) and N_1 = ECFG(1, 2, 2 beta).

How each sum is evaluated (all exact for the constituents they see):

- ECFN(2): ``z^T Theta^beta z / 2`` (a batched matrix-vector product).
- ECFN(3): ``sum_{i>j>k} B_ij B_jk B_ik`` with ``B = sqrt(z z^T) * Theta^beta``, a batched
  matrix product (blocked over the triangle, ~ n^3 flops).
- ECFG(v, 3), ECFG(v, 4), ECFN(4): compiled loops over every triplet / quadruplet
  (:mod:`jettf.features.kernels`, numba), one pass per beta; ECFN(4) rides along with
  the quadruplet pass, which visits every quadruplet anyway.

By default every sum runs over all of a jet's constituents. Only where the spec sets
``ecfg3_max_constituents`` (U_2, M_2, N_2) or ``ecf4_max_constituents`` (C_3, U_3,
M_3, N_3) is the member computed entirely (every factor) on the hardest ``k``
constituents, z renormalised over the kept ones (fastjet-contrib's value on those
constituents), and its column name ends in ``_k{k}``.
"""

from __future__ import annotations

import functools
from typing import Dict, Optional, Tuple

import numpy as np

from .kernels import quadruplet_sums, triplet_sums

__all__ = ["ecf_requests", "correlator_sums", "series_columns", "constituent_limits"]

_E3_DIRECT_WIDTH = 32  # below this width ECFN(3) uses one plain (L @ L) product


# ------------------------------------------------------------------ series
# series -> n -> (which truncation field applies, formula). A formula gets ``s(kind, beta)``,
# the correlator sums of its constituent set, and beta: e2, e3, e4 = ECFN(2..4);
# g13, g23 = ECFG(1, 3), ECFG(2, 3); g14, g24 = ECFG(1, 4), ECFG(2, 4).
_SERIES = {
    "c": {
        1: (None, lambda s, b: s("e2", b)),
        2: (None, lambda s, b: _div(s("e3", b), s("e2", b) ** 2)),
        3: ("k4", lambda s, b: _div(s("e2", b) * s("e4", b), s("e3", b) ** 2)),
    },
    "u": {
        1: (None, lambda s, b: s("e2", b)),
        2: ("k3", lambda s, b: s("g13", b)),
        3: ("k4", lambda s, b: s("g14", b)),
    },
    "m": {
        1: (None, lambda s, b: s("e2", b)),
        2: ("k3", lambda s, b: _div(s("g13", b), s("e2", b))),
        3: ("k4", lambda s, b: _div(s("g14", b), s("g13", b))),
    },
    "n": {
        1: (None, lambda s, b: s("e2", 2 * b)),
        2: ("k3", lambda s, b: _div(s("g23", b), s("e2", b) ** 2)),
        3: ("k4", lambda s, b: _div(s("g24", b), s("g13", b) ** 2)),
    },
}


def constituent_limits(spec) -> Dict[str, Optional[int]]:
    """``{"all": None, "k3": k or None, "k4": k or None}``: the constituent sets of a spec."""
    return {"all": None, "k3": spec.ecfg3_max_constituents, "k4": spec.ecf4_max_constituents}


def _members(spec):
    """``(name, constituent set, formula of s)`` for every correlator feature of ``spec``, in column order.

    The set is ``"all"`` unless the spec truncates that member (``"k3"``/``"k4"``);
    names come from :meth:`FeatureSpec.names` (truncated members end in ``_k{k}``).
    """
    limits = constituent_limits(spec)
    names = iter(spec._correlator_names())
    for n in spec.c_series:
        for b in spec.c_betas:
            key, f = _SERIES["c"][n]
            yield next(names), key if key and limits[key] else "all", functools.partial(f, b=b)
    for a, b in spec.d2_params:
        yield next(names), "all", functools.partial(_d2, a=a, b=b)
    for series in ("u", "m", "n"):
        for n in getattr(spec, f"{series}_series"):
            for b in getattr(spec, f"{series}_betas"):
                key, f = _SERIES[series][n]
                yield next(names), key if key and limits[key] else "all", functools.partial(f, b=b)


def _d2(s, a, b):
    return _div(s("e3", a), s("e2", b) ** (3.0 * a / b))


def ecf_requests(spec) -> Dict[str, set]:
    """The correlator sums each constituent set needs: ``{"all"|"k3"|"k4": {(kind, beta)}}``."""
    req = {"all": set(), "k3": set(), "k4": set()}
    for _, key, formula in _members(spec):
        formula(lambda kind, beta, key=key: req[key].add((kind, beta)) or np.ones(1))
    return req


def series_columns(spec, sums: Dict[str, dict]) -> Dict[str, np.ndarray]:
    """The C, D2, U, M, N columns ``{name: [J]}`` from the sums of each set (see :func:`correlator_sums`)."""
    return {name: formula(lambda kind, beta, key=key: sums[key][(kind, beta)]) for name, key, formula in _members(spec)}


# ----------------------------------------------------------------- sums
def correlator_sums(theta: np.ndarray, z: np.ndarray, requests, counts=None) -> Dict[Tuple[str, float], np.ndarray]:
    """Requested correlator sums for a group of jets.

    Args:
        theta: ``[G, w, w]`` float64 pairwise Delta R (zero diagonal).
        z: ``[G, w]`` float64 momentum fractions (zero for padding), summing to 1 per jet.
        requests: iterable of ``(kind, beta)`` (see :func:`ecf_requests`).
        counts: ``[G]`` constituents per jet (the first ``counts[g]`` columns; default ``w``):
            the triplet and quadruplet loops stop there instead of running over padding.

    Returns:
        ``{(kind, beta): [G] float64}``.
    """
    requests = set(requests)
    out = {}
    if counts is None:
        counts = np.full(z.shape[0], z.shape[1])
    dense = sorted({beta for kind, beta in requests if kind in ("e2", "e3")})
    if dense:
        w = z.shape[1]
        s = np.sqrt(z)
        # sqrt(z_i z_j) below the diagonal, 0 on and above it.
        scale = s[:, :, None] * (s[:, None, :] * np.tri(w, k=-1))
        for beta in dense:
            power = _pow(theta, beta)
            if ("e3", beta) not in requests:  # ECFN(2) = z^T theta^beta z / 2
                out[("e2", beta)] = 0.5 * np.einsum("gi,gi->g", np.matmul(power, z[..., None])[..., 0], z)
                continue
            # L_ij = sqrt(z_i z_j) theta_ij^beta (i > j): ECFN(3) = sum_{i>j>k} L_ij L_jk L_ik, ECFN(2) = s^T L s.
            low = np.multiply(power, scale, out=power if power is not theta else None)
            out[("e3", beta)] = _triangle_sum(low)
            if ("e2", beta) in requests:
                out[("e2", beta)] = np.einsum("gi,gi->g", np.matmul(low, s[..., None])[..., 0], s)
    for kinds, kernel in ((("g13", "g23"), triplet_sums), (("g14", "g24", "e4"), quadruplet_sums)):
        betas = sorted({beta for kind, beta in requests if kind in kinds})
        if not betas:
            continue
        # "full": the second-smallest-angle (and, for quadruplets, all-angle) sums are wanted too.
        full = [any((kind, beta) in requests for kind in kinds[1:]) for beta in betas]
        sums = kernel(theta, z, counts, betas, full)
        for i, beta in enumerate(betas):
            for j, kind in enumerate(kinds):
                if (kind, beta) in requests:
                    out[(kind, beta)] = sums[:, i, j]
    return out


def _triangle_sum(low: np.ndarray) -> np.ndarray:
    """``sum_{i>j>k} L_ij L_jk L_ik`` per jet for strictly lower-triangular ``L [G, w, w]``.

    This is ``sum(L @ L * L)``; splitting the indices in halves, the two diagonal
    blocks recurse and the off-diagonal block contributes
    ``sum((L21 @ L11 + L22 @ L21) * L21)``, ~3x fewer flops than one full product.
    """
    w = low.shape[-1]
    if w <= _E3_DIRECT_WIDTH:
        return np.einsum("gij,gij->g", np.matmul(low, low), low)
    h = w // 2
    l11, l21, l22 = low[:, :h, :h], low[:, h:, :h], low[:, h:, h:]
    cross = np.matmul(l21, l11) + np.matmul(l22, l21)
    return _triangle_sum(l11) + _triangle_sum(l22) + np.einsum("gij,gij->g", cross, l21)


# ----------------------------------------------------------------- helpers
def _pow(x: np.ndarray, beta: float) -> np.ndarray:
    """``x ** beta`` for x >= 0, with the common exponents special-cased."""
    if beta == 1.0:
        return x
    if beta == 2.0:
        return x * x
    if beta == 0.5:
        return np.sqrt(x)
    return np.power(x, beta)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, 0 where ``den`` is 0 (a jet too small for the observable)."""
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out
