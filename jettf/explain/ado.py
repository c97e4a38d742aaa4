"""Decision ordering between two classifiers (004, sections 3.8.2 and 4.5.1; Faucett et al., arXiv:2010.11998).

For classifiers ``f`` and ``g`` (any real scores, larger = more signal-like) and a (signal, background) pair
``(x, x')``, the decision ordering is

    DO[f, g](x, x') = Theta((f(x) - f(x')) (g(x) - g(x')))

with the Heaviside convention **Theta(0) = 1/2**: a pair that either classifier ties counts one half. This
matches the AUC's tie convention, so ``ado(f, labels)`` equals ``roc_auc(labels, f)`` and, for classifiers
without ties, ``ado(f, f) == 1`` and ``ado(f, -f) == 0``. The average decision ordering (ADO) is the mean of DO
over a set of pairs: every signal x background pair by default, or given pairs.

Over all pairs the ADO is computed exactly in O(N log N), without the ``N_s x N_b`` matrix: with
``S(A) = sum_{i<j in A} sign(f_i - f_j) sign(g_i - g_j)`` (Kendall's S statistic, from scipy's O(N log N)
``kendalltau`` and the tie counts), the signal-background part is
``S_sb = S(all) - S(signal) - S(background)`` and ``ADO = 1/2 + S_sb / (2 N_s N_b)``.

The disagreement set (004 eq. 3.10) is the set of pairs with DO = 0, i.e. *strictly* inverted orderings
(pairs that either classifier ties are in neither set). :func:`disagreement_pairs` enumerates it exactly
when ``N_s N_b`` is small and otherwise samples it uniformly, with replacement and a seed, by rejection.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np
from scipy import stats

__all__ = [
    "ado",
    "decision_ordering",
    "kendall_s",
    "disagreement_pairs",
    "random_pairs",
    "Disagreement",
    "EXACT_PAIR_LIMIT",
]

#: Up to this many (signal, background) pairs the disagreement set is enumerated exactly; above, sampled.
EXACT_PAIR_LIMIT = 1 << 22
# Pairs are enumerated or drawn in chunks of about this many entries.
_CHUNK_PAIRS = 1 << 21


# ----------------------------------------------------------------------------- inputs


def _scores(values, name: str, n: Optional[int] = None) -> np.ndarray:
    s = np.asarray(values)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim != 1:
        raise ValueError(
            f"{name}: expected one score per jet, shape [N], got shape {s.shape}"
            + ("; for [N, C] probabilities pass probs[:, signal_index]" if s.ndim == 2 else "")
        )
    if n is not None and s.shape[0] != n:
        raise ValueError(f"{name}: expected {n} scores (one per jet, like f), got {s.shape[0]}")
    s = s.astype(np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{name}: contains nan or inf")
    return s


def _is_signal(y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y: expected binary labels of shape [{n}] (1 = signal, 0 = background), got shape {y.shape}")
    if y.dtype != bool:
        if not np.all((y == 0) | (y == 1)):
            raise ValueError(f"y: expected binary labels 0/1 (1 = signal), got values {np.unique(y)[:6]}")
        y = y.astype(bool)
    n_sig = int(y.sum())
    if n_sig == 0 or n_sig == n:
        raise ValueError(f"y: need both signal (1) and background (0) jets, got {n_sig} signal of {n}")
    return y


def _pairs(pairs, n: int) -> np.ndarray:
    p = np.asarray(pairs)
    if p.ndim != 2 or p.shape[1] != 2 or not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"pairs: expected integer (signal index, background index) pairs of shape [P, 2], got "
                         f"shape {p.shape} and dtype {p.dtype}")
    if p.size and (p.min() < 0 or p.max() >= n):
        raise ValueError(f"pairs: indices must lie in [0, {n - 1}], got values in [{p.min()}, {p.max()}]")
    return p


# ----------------------------------------------------------------------------- Kendall's S


def _tie_pairs(values: np.ndarray) -> int:
    """Pairs of equal values: sum over distinct values of t (t - 1) / 2 (a Python int, no overflow)."""
    counts = np.unique(values, return_counts=True)[1].astype(np.int64)
    return int(np.sum(counts * (counts - 1) // 2))


def kendall_s(x, y) -> int:
    """Kendall's S = sum over pairs i < j of sign(x_i - x_j) sign(y_i - y_j) (concordant minus discordant), exact.

    From scipy's tau-b (Knight's O(N log N) algorithm): S = tau_b sqrt((n0 - n1)(n0 - n2)) with n0 = N(N-1)/2
    and n1, n2 the pairs tied in x and in y, rounded to the integer it is. The float64 rounding of tau_b is a
    few 1e-16 relative, so the result is exact for N up to about 10^7 (|S| < 3e14). When every pair is tied
    in x or in y (scipy's tau is nan) S is 0.
    """
    x = _scores(x, "x")
    y = _scores(y, "y", x.size)
    n = x.size
    if n < 2:
        return 0
    n0 = n * (n - 1) // 2
    tied_x, tied_y = _tie_pairs(x), _tie_pairs(y)
    if tied_x == n0 or tied_y == n0:
        return 0
    tau_b = stats.kendalltau(x, y).statistic
    return int(round(tau_b * math.sqrt(n0 - tied_x) * math.sqrt(n0 - tied_y)))


# ----------------------------------------------------------------------------- ADO


def decision_ordering(f, g, pairs) -> np.ndarray:
    """DO[f, g] per pair, float64 ``[P]``: 1 same ordering, 0 inverted, 1/2 when f or g ties the pair.

    ``pairs`` is ``[P, 2]`` of (signal index, background index) into ``f`` and ``g``.
    """
    f = _scores(f, "f")
    g = _scores(g, "g", f.size)
    p = _pairs(pairs, f.size)
    s = np.sign(f[p[:, 0]] - f[p[:, 1]]) * np.sign(g[p[:, 0]] - g[p[:, 1]])
    return 0.5 * (1.0 + s)


def ado(f, g, y=None, *, pairs=None) -> float:
    """Average decision ordering of scores ``f`` and ``g`` (one per jet, larger = more signal-like).

    Either ``y`` (binary labels, 1 = signal): the mean over *every* (signal, background) pair, exact, in
    O(N log N) time and O(N) memory; or ``pairs`` ``[P, 2]`` (signal index, background index): the mean over
    those pairs (e.g. a disagreement set). Ties count 1/2 (see the module docstring). Returns a float in [0, 1].
    """
    f = _scores(f, "f")
    g = _scores(g, "g", f.size)
    if pairs is not None:
        p = _pairs(pairs, f.size)
        if len(p) == 0:
            raise ValueError("pairs: empty; the ADO over no pairs is undefined")
        return float(np.mean(decision_ordering(f, g, p)))
    if y is None:
        raise ValueError("ado: pass binary labels y (all signal x background pairs) or pairs=[P, 2]")
    is_sig = _is_signal(y, f.size)
    n_sig, n_bkg = int(is_sig.sum()), int((~is_sig).sum())
    s_pairs = kendall_s(f, g) - kendall_s(f[is_sig], g[is_sig]) - kendall_s(f[~is_sig], g[~is_sig])
    return 0.5 + s_pairs / (2.0 * n_sig * n_bkg)


# ----------------------------------------------------------------------------- disagreement set


class Disagreement(NamedTuple):
    """A sample of the disagreement set between two classifiers.

    ``pairs``: int64 ``[P, 2]`` (signal index, background index); ``fraction``: the fraction of all
    (signal, background) pairs that are strictly inverted (exact when ``exact``, else estimated from the
    draws); ``n_total``: N_s x N_b; ``exact``: whether the set was enumerated (pairs are then distinct).
    """

    pairs: np.ndarray
    fraction: float
    n_total: int
    exact: bool


def random_pairs(y, n_pairs: int, seed: int = 0) -> np.ndarray:
    """``n_pairs`` uniform (signal, background) pairs, drawn with replacement: int64 ``[n_pairs, 2]``."""
    y = np.asarray(y)
    is_sig = _is_signal(y, len(y) if y.ndim else 0)
    sig, bkg = np.flatnonzero(is_sig), np.flatnonzero(~is_sig)
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(sig, n_pairs), rng.choice(bkg, n_pairs)], axis=1).astype(np.int64)


def disagreement_pairs(
    f, g, y, n_pairs: int = 100_000, seed: int = 0, *, exact_limit: int = EXACT_PAIR_LIMIT,
    max_draws: Optional[int] = None,
) -> Disagreement:
    """Pairs that ``f`` and ``g`` order strictly differently (004 eq. 3.10: DO = 0).

    With ``N_s N_b <= exact_limit`` every pair is checked; if more than ``n_pairs`` disagree, ``n_pairs`` of
    them are kept at random without replacement. Above the limit, uniform random pairs are drawn (seeded,
    with replacement) and the disagreeing ones kept until ``n_pairs`` are found or ``max_draws`` (default
    ``200 n_pairs``) pairs were drawn. The result may hold fewer than ``n_pairs`` pairs (none when the
    classifiers never disagree).
    """
    f = _scores(f, "f")
    g = _scores(g, "g", f.size)
    is_sig = _is_signal(y, f.size)
    if n_pairs < 1:
        raise ValueError(f"n_pairs: expected >= 1, got {n_pairs}")
    sig, bkg = np.flatnonzero(is_sig), np.flatnonzero(~is_sig)
    n_total = sig.size * bkg.size
    rng = np.random.default_rng(seed)
    if n_total <= exact_limit:
        found = []
        rows = max(1, _CHUNK_PAIRS // bkg.size)
        for start in range(0, sig.size, rows):
            s = sig[start:start + rows]
            inverted = np.sign(f[s, None] - f[None, bkg]) * np.sign(g[s, None] - g[None, bkg]) < 0
            i, j = np.nonzero(inverted)
            found.append(np.stack([s[i], bkg[j]], axis=1))
        pairs = np.concatenate(found).astype(np.int64)
        fraction = len(pairs) / n_total
        if len(pairs) > n_pairs:
            pairs = pairs[np.sort(rng.choice(len(pairs), n_pairs, replace=False))]
        return Disagreement(pairs, fraction, n_total, True)
    max_draws = 200 * n_pairs if max_draws is None else int(max_draws)
    kept, n_kept, drawn, hits = [], 0, 0, 0
    while n_kept < n_pairs and drawn < max_draws:
        size = min(_CHUNK_PAIRS, max_draws - drawn)
        s, b = rng.choice(sig, size), rng.choice(bkg, size)
        inverted = np.sign(f[s] - f[b]) * np.sign(g[s] - g[b]) < 0
        drawn += size
        hits += int(inverted.sum())
        new = np.stack([s[inverted], b[inverted]], axis=1)[: n_pairs - n_kept]
        kept.append(new)
        n_kept += len(new)
    pairs = np.concatenate(kept).astype(np.int64) if kept else np.empty((0, 2), np.int64)
    return Disagreement(pairs, hits / max(drawn, 1), n_total, False)
