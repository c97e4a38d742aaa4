"""Compiled (numba) sums over all triplets and quadruplets of a jet's constituents.

The generalized energy correlators ECFG(v, N, beta) weight each N-tuple by the
product of its v smallest pairwise angles, which no matrix product expresses, so
they are summed explicitly over i < j < k (< l), exactly, in float64:

- the jet's pairwise Delta R is raised to each beta once (theta^beta is monotonic,
  so the v smallest of theta^beta are the v smallest theta, raised to beta);
- for quadruplets, each pair (i, j) first stores min and max of (theta_im, theta_jm)
  for every m > j; each triplet (i, j, k) then reduces its own angles once (smallest,
  second smallest) and the innermost index l runs over contiguous rows with
  min/max selections and three accumulations only (ECFG(1, 4), ECFG(2, 4), and
  ECFN(4), which rides along), a loop LLVM vectorizes; triplets likewise;
- a beta whose only sum is ECFG(1, N) (e.g. U_3 at beta 0.5) takes a cheaper
  loop that tracks only the smallest angle;
- loops stop at each jet's own constituent count, so padding costs nothing.

Cost ~ n^3/6 triplets and ~ n^4/24 quadruplets per jet and beta, under a
nanosecond each on one core. fastmath is limited to reassociation (the sums are
split across vector lanes), signed zeros and FMA contraction; nothing is
approximated. The kernels are compiled on first use and cached on disk
(``cache=True``, next to this file, or numba's user cache where that is read-only):
a few seconds once per change of this file, then loaded.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["triplet_sums", "quadruplet_sums"]

# reassoc lets LLVM vectorize the sums (partial sums in lanes); contract allows FMAs. No approximations.
_JIT = dict(cache=True, fastmath={"reassoc", "nsz", "contract"}, nogil=True)


@numba.njit(**_JIT)
def _power_matrix(theta, n, beta, out):
    """``out[:n, :n] = theta[:n, :n] ** beta`` with the common exponents special-cased."""
    for i in range(n):
        for j in range(n):
            t = theta[i, j]
            if beta == 1.0:
                out[i, j] = t
            elif beta == 2.0:
                out[i, j] = t * t
            elif beta == 0.5:
                out[i, j] = np.sqrt(t)
            else:
                out[i, j] = t**beta


@numba.njit(**_JIT)
def _triplets(theta, z, counts, betas, full, out):
    g_jets, w = z.shape
    a = np.empty((w, w))
    for g in range(g_jets):
        n = counts[g]
        zg = z[g]
        for b in range(betas.shape[0]):
            _power_matrix(theta[g], n, betas[b], a)
            s_first = 0.0
            s_two = 0.0
            for i in range(n - 2):
                ai = a[i]
                for j in range(i + 1, n - 1):
                    aij = ai[j]
                    aj = a[j]
                    f = 0.0
                    t = 0.0
                    if full[b]:
                        for d in range(n - j - 1):
                            k = numba.uint64(j + 1 + d)  # unsigned: no negative-index wraparound, so LLVM vectorizes
                            x = ai[k]
                            y = aj[k]
                            lo = min(x, y)
                            first = min(aij, lo)
                            second = min(max(aij, lo), max(x, y))
                            zk = zg[k]
                            f += zk * first
                            t += zk * (first * second)
                    else:
                        for d in range(n - j - 1):
                            k = numba.uint64(j + 1 + d)
                            f += zg[k] * min(aij, min(ai[k], aj[k]))
                    wij = zg[i] * zg[j]
                    s_first += wij * f
                    s_two += wij * t
            out[g, b, 0] = s_first
            out[g, b, 1] = s_two


@numba.njit(**_JIT)
def _quadruplets(theta, z, counts, betas, full, out):
    g_jets, w = z.shape
    a = np.empty((w, w))
    lo = np.empty(w)  # for the pair (i, j): min and max of (theta_im, theta_jm)^beta over m
    hi = np.empty(w)
    for g in range(g_jets):
        n = counts[g]
        zg = z[g]
        for b in range(betas.shape[0]):
            _power_matrix(theta[g], n, betas[b], a)
            s_first = 0.0
            s_two = 0.0
            s_prod = 0.0
            for i in range(n - 3):
                ai = a[i]
                for j in range(i + 1, n - 2):
                    aij = ai[j]
                    aj = a[j]
                    zij = zg[i] * zg[j]
                    for d in range(n - j - 1):
                        m = numba.uint64(j + 1 + d)
                        x = ai[m]
                        y = aj[m]
                        lo[m] = min(x, y)
                        hi[m] = max(x, y)
                    if full[b]:
                        for k in range(j + 1, n - 1):
                            lk = lo[k]
                            hk = hi[k]
                            m3 = min(aij, lk)  # smallest and second smallest angle of (i, j, k)
                            s3 = min(max(aij, lk), hk)
                            ak = a[k]
                            f = 0.0
                            t = 0.0
                            p = 0.0
                            for d in range(n - k - 1):
                                l = numba.uint64(k + 1 + d)  # unsigned: no negative-index wraparound  # noqa: E741
                                x = lo[l]
                                y = hi[l]
                                u = ak[l]
                                n1 = min(x, u)  # smallest and second smallest of the three new angles
                                n2 = min(max(x, u), y)
                                first = min(m3, n1)
                                second = min(max(m3, n1), min(s3, n2))
                                zl = zg[l]
                                f += zl * first
                                t += zl * (first * second)
                                p += zl * (x * y * u)
                            wijk = zij * zg[k]
                            s_first += wijk * f
                            s_two += wijk * t
                            s_prod += wijk * (aij * lk * hk) * p
                    else:
                        for k in range(j + 1, n - 1):
                            m3 = min(aij, lo[k])
                            ak = a[k]
                            f = 0.0
                            for d in range(n - k - 1):
                                l = numba.uint64(k + 1 + d)  # noqa: E741
                                f += zg[l] * min(m3, min(lo[l], ak[l]))
                            s_first += zij * zg[k] * f
            out[g, b, 0] = s_first
            out[g, b, 1] = s_two
            out[g, b, 2] = s_prod


def _prepare(theta, z, counts, betas, full):
    """C-contiguous, writeable arrays of fixed dtypes: one compiled signature per kernel (cached once)."""
    theta = np.require(theta, np.float64, "CW")
    z = np.require(z, np.float64, "CW")
    counts = np.require(np.minimum(counts, z.shape[1]), np.int64, "CW")
    betas = np.require(betas, np.float64, "CW")
    full = np.array(np.broadcast_to(full, betas.shape), dtype=np.bool_)
    return theta, z, counts, betas, full


def triplet_sums(theta, z, counts, betas, full=True) -> np.ndarray:
    """``[G, B, 2]``: ECFG(1, 3, beta) and ECFG(2, 3, beta) of each jet, for each beta.

    Args:
        theta: ``[G, w, w]`` pairwise Delta R; z: ``[G, w]`` momentum fractions.
        counts: ``[G]`` constituents to use per jet (the first ``counts[g]`` columns).
        betas: ``[B]`` angular exponents.
        full: bool per beta (or one for all); False computes ECFG(1, 3) only
            (ECFG(2, 3) is then 0), about half the work.
    """
    theta, z, counts, betas, full = _prepare(theta, z, counts, betas, full)
    out = np.zeros((z.shape[0], len(betas), 2))
    if len(betas) and len(z):
        _triplets(theta, z, counts, betas, full, out)
    return out


def quadruplet_sums(theta, z, counts, betas, full=True) -> np.ndarray:
    """``[G, B, 3]``: ECFG(1, 4, beta), ECFG(2, 4, beta) and ECFN(4, beta) of each jet, for each beta.

    ECFN(4) (the product of all six angles) rides along with ECFG(2, 4): the loop
    visits every quadruplet anyway, and the product costs two multiplications.
    ``full`` False (per beta) computes ECFG(1, 4) only (the others are then 0).
    Other arguments as for :func:`triplet_sums`.
    """
    theta, z, counts, betas, full = _prepare(theta, z, counts, betas, full)
    out = np.zeros((z.shape[0], len(betas), 3))
    if len(betas) and len(z):
        _quadruplets(theta, z, counts, betas, full, out)
    return out
