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

- ECFN(2): ``z^T Theta^beta z / 2`` on every constituent.
- ECFN(3): ``sum_{i>j>k} B_ij B_jk B_ik`` with ``B = sqrt(z z^T) * Theta^beta``, a batched
  matrix product on every constituent (blocked over the triangle, ~ n^3 flops).
- ECFG(v, 3), ECFG(v, 4), ECFN(4): explicit sums over all triplets / quadruplets of
  the hardest ``k`` constituents (``FeatureSpec.ecfg3_max_constituents`` and
  ``ecf4_max_constituents``), in blocks of combinations.

A series member that needs a 4-point correlator is computed entirely (every
factor) on the hardest ``ecf4_max_constituents``; U_2, M_2 and N_2 entirely on
the hardest ``ecfg3_max_constituents``; z is renormalised over the kept
constituents. Each value therefore equals fastjet-contrib's on those constituents.
"""

from __future__ import annotations

import functools
import math
from typing import Dict, Iterator, Tuple

import numpy as np

from .spec import _fmt

__all__ = ["ecf_requests", "correlator_sums", "series_columns"]

# Elements per gathered block array (jets x combinations): 2^17 float64 = 1 MiB, cache-sized.
_BLOCK_ELEMENTS = 1 << 17
_E3_DIRECT_WIDTH = 32  # below this width ECFN(3) uses one plain (L @ L) product


# ------------------------------------------------------------------ series
# series -> n -> (constituent set, formula). A formula gets ``s(kind, beta)``, the
# correlator sums of its set, and beta: e2, e3, e4 = ECFN(2..4); g13, g23 = ECFG(1, 3),
# ECFG(2, 3); g14, g24 = ECFG(1, 4), ECFG(2, 4).
_SERIES = {
    "c": {
        1: ("all", lambda s, b: s("e2", b)),
        2: ("all", lambda s, b: _div(s("e3", b), s("e2", b) ** 2)),
        3: ("k4", lambda s, b: _div(s("e2", b) * s("e4", b), s("e3", b) ** 2)),
    },
    "u": {
        1: ("all", lambda s, b: s("e2", b)),
        2: ("k3", lambda s, b: s("g13", b)),
        3: ("k4", lambda s, b: s("g14", b)),
    },
    "m": {
        1: ("all", lambda s, b: s("e2", b)),
        2: ("k3", lambda s, b: _div(s("g13", b), s("e2", b))),
        3: ("k4", lambda s, b: _div(s("g14", b), s("g13", b))),
    },
    "n": {
        1: ("all", lambda s, b: s("e2", 2 * b)),
        2: ("k3", lambda s, b: _div(s("g23", b), s("e2", b) ** 2)),
        3: ("k4", lambda s, b: _div(s("g24", b), s("g13", b) ** 2)),
    },
}


def _members(spec):
    """``(name, constituent set, formula of s)`` for every correlator feature of ``spec``, in column order."""
    for n in spec.c_series:
        for b in spec.c_betas:
            key, f = _SERIES["c"][n]
            yield f"c{n}_b{_fmt(b)}", key, functools.partial(f, b=b)
    for a, b in spec.d2_params:
        yield f"d2_a{_fmt(a)}_b{_fmt(b)}", "all", functools.partial(_d2, a=a, b=b)
    for series in ("u", "m", "n"):
        for n in getattr(spec, f"{series}_series"):
            for b in getattr(spec, f"{series}_betas"):
                key, f = _SERIES[series][n]
                yield f"{series}{n}_b{_fmt(b)}", key, functools.partial(f, b=b)


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
def correlator_sums(theta: np.ndarray, z: np.ndarray, requests) -> Dict[Tuple[str, float], np.ndarray]:
    """Requested correlator sums for a group of jets.

    Args:
        theta: ``[G, w, w]`` float64 pairwise Delta R (zero diagonal).
        z: ``[G, w]`` float64 momentum fractions (zero for padding), summing to 1 per jet.
        requests: iterable of ``(kind, beta)`` (see :func:`ecf_requests`).

    Returns:
        ``{(kind, beta): [G] float64}``.
    """
    requests = set(requests)
    out = {}
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
    triplets = sorted((k, b) for k, b in requests if k in ("g13", "g23"))
    quads = sorted((k, b) for k, b in requests if k in ("e4", "g14", "g24"))
    if triplets:
        out.update(_enumerated_sums(theta, z, 3, triplets))
    if quads:
        out.update(_enumerated_sums(theta, z, 4, quads))
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


def _enumerated_sums(theta, z, order, requests):
    """ECFG/ECFN sums over all ``order``-combinations of the ``w`` columns, blockwise."""
    g, w = z.shape
    out = {r: np.zeros(g) for r in requests}
    if w < order:
        return out
    flat_theta = np.ascontiguousarray(theta).reshape(g, w * w)
    flat_zz = (z[:, :, None] * z[:, None, :]).reshape(g, w * w)
    need_prod = any(k == "e4" for k, _ in requests)
    need_second = any(k in ("g23", "g24") for k, _ in requests)
    for members, pairs in _combination_blocks(order, w):
        jets = max(1, _BLOCK_ELEMENTS // len(members[0]))
        for j0 in range(0, g, jets):
            sl = slice(j0, j0 + jets)
            t = flat_theta[sl]
            angles = [t[:, p] for p in pairs]
            if order == 3:
                weight = flat_zz[sl][:, pairs[0]] * z[sl][:, members[2]]
                lo, hi = np.minimum(angles[0], angles[1]), np.maximum(angles[0], angles[1])
                first = np.minimum(lo, angles[2])
                second = np.maximum(lo, np.minimum(hi, angles[2])) if need_second else None
            else:
                zz = flat_zz[sl]
                weight = zz[:, pairs[0]] * zz[:, pairs[5]]
                first, second = _two_smallest(angles, need_second)
            base = {
                "first": first,
                "two": first * second if need_second else None,  # product of the two smallest angles
                "all": np.prod(angles, axis=0) if need_prod else None,
            }
            for kind, beta in requests:
                x = base[{"g13": "first", "g14": "first", "g23": "two", "g24": "two", "e4": "all"}[kind]]
                out[(kind, beta)][sl] += np.einsum("gt,gt->g", weight, _pow(x, beta))
    return out


def _two_smallest(angles, need_second):
    """Smallest and second-smallest of six ``[G, T]`` arrays (pairs sorted, then merged)."""
    lows = [np.minimum(angles[i], angles[i + 1]) for i in (0, 2, 4)]
    if not need_second:
        return np.minimum(np.minimum(lows[0], lows[1]), lows[2]), None
    highs = [np.maximum(angles[i], angles[i + 1]) for i in (0, 2, 4)]
    s1, s2 = lows[0], highs[0]
    for lo, hi in zip(lows[1:], highs[1:]):
        # two smallest of {s1 <= s2} U {lo <= hi}
        s1, s2 = np.minimum(s1, lo), np.minimum(np.maximum(s1, lo), np.minimum(s2, hi))
    return s1, s2


def _combination_blocks(order: int, w: int) -> Iterator[tuple]:
    """Blocks ``(members, pairs)`` covering every ``order``-combination of ``range(w)`` once.

    ``members``: ``order`` ascending index arrays; ``pairs``: flat indices
    ``a * w + b`` of the pairs, ordered (01, 02, 12) for triplets and
    (01, 02, 03, 13, 12, 23) for quadruplets, so pairs 0 and 5 are disjoint.
    """
    if math.comb(w, order) <= 8 * _BLOCK_ELEMENTS:
        yield from _cached_blocks(order, w)
        return
    # Colexicographic order: the combinations whose largest member is t are the
    # (order-1)-combinations of range(t), a prefix of one table, followed by t.
    base = _colex(order - 1, w - 1)
    for t in range(order - 1, w):
        head = base[: math.comb(t, order - 1)]
        for s in range(0, len(head), _BLOCK_ELEMENTS):
            part = head[s : s + _BLOCK_ELEMENTS]
            members = [part[:, i] for i in range(order - 1)] + [np.full(len(part), t, dtype=np.intp)]
            yield members, _pair_indices(members, w)


@functools.lru_cache(maxsize=64)
def _cached_blocks(order: int, w: int) -> tuple:
    table = _colex(order, w)
    blocks = []
    for s in range(0, len(table), _BLOCK_ELEMENTS):
        members = [np.ascontiguousarray(table[s : s + _BLOCK_ELEMENTS, i]) for i in range(order)]
        blocks.append((members, _pair_indices(members, w)))
    return tuple(blocks)


def _pair_indices(members, w):
    if len(members) == 3:
        i, j, k = members
        return [i * w + j, i * w + k, j * w + k]
    i, j, k, l = members
    return [i * w + j, i * w + k, i * w + l, j * w + l, j * w + k, k * w + l]


@functools.lru_cache(maxsize=64)
def _colex(r: int, w: int) -> np.ndarray:
    """All r-combinations of range(w) (each ascending) in colexicographic order, ``[C(w, r), r]``."""
    if r == 1:
        return np.arange(w, dtype=np.intp)[:, None]
    prev = _colex(r - 1, w)
    parts = [
        np.column_stack([prev[: math.comb(t, r - 1)], np.full(math.comb(t, r - 1), t, dtype=np.intp)])
        for t in range(r - 1, w)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, r), dtype=np.intp)


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
