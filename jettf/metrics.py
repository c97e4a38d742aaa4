"""Physics metrics for jet taggers: accuracy, AUC, background rejection, SIC, bootstrap intervals.

Conventions
-----------
- Labels ``y_true`` are integer class indices ``[N]``; ``probs`` are softmax outputs ``[N, C]``.
  Binary tasks use two classes (never a single sigmoid): the signal score is
  ``probs[:, signal_index]`` and signal means ``y_true == signal_index``. The binary
  functions below take that score ``[N]`` and 0/1 (or bool) labels, 1 = signal.
- Multiclass figures are one-vs-rest: class ``c`` is signal, all others background, score
  ``probs[:, c]``; the mean AUC is the unweighted mean over classes (scikit-learn's
  ``multi_class="ovr", average="macro"``).
- Point figures come from scikit-learn (``accuracy_score``, ``confusion_matrix``, ``roc_curve``,
  ``roc_auc_score``). The ROC curve is the set of points (eps_B, eps_S) = (FPR, TPR) at every
  distinct score threshold (a jet passes when ``score >= threshold``), plus (0, 0): scikit-learn's
  ``roc_curve(..., drop_intermediate=False)``. Between points it is a straight line: the
  efficiencies of a classifier that picks randomly between the two thresholds. The AUC is the
  trapezoid area under it (ties count one half).
- eps_B at a given eps_S is read off that piecewise-linear curve; where eps_S equals a TPR
  reached by several points (a horizontal run), the lowest eps_B is taken (``np.interp`` on
  scikit-learn's ``roc_curve`` would take the highest of those).
- Background rejection is 1/eps_B and is ``inf`` when no background passes; the finite
  lower bound is then the number of background jets. In JSON (see :func:`json_safe`) ``inf``
  is written as the string ``"inf"`` and ``nan`` as ``null``; ``float("inf")`` reads it back.
- SIC = eps_S/sqrt(eps_B) (001, Sec. 4), over thresholds passing at least ``SIC_MIN_BACKGROUND``
  background jets.
- Bootstrap intervals resample jets with replacement (percentile interval, order statistics).
  For speed the ROC figures of all resamples are computed here at once, from per-jet counts on
  one sorted copy of the jets; with every count 1 that curve is scikit-learn's, point for point.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy import stats
from scipy.spatial import distance
from sklearn import metrics as skm

__all__ = [
    "accuracy",
    "weighted_roc_auc",
    "paired_auc_bootstrap",
    "auc_difference",
    "roc_auc",
    "roc_curve",
    "auc_one_vs_rest",
    "background_rejection",
    "inverse_fpr_at_tpr",
    "sic_curve",
    "max_sic",
    "confusion_matrix",
    "mass_sculpting_jsd",
    "mass_sculpting",
    "weighted_figures",
    "bootstrap_ci",
    "evaluate_predictions",
    "welch_t_test",
    "compare_seeds",
    "mean_std_over_folds",
    "json_safe",
]

#: Signal efficiencies at which 1/eps_B is reported (002: 30% and 50%).
REJECTION_EFFICIENCIES = (0.3, 0.5)
#: TPR at which 003 reports 1/FPR.
INVERSE_FPR_TPR = 0.7
#: SIC points need at least this many background jets passing (1/sqrt(eps_B) is noise below).
SIC_MIN_BACKGROUND = 10
# Bootstrap replicates are processed in chunks of about this many (replicate, jet) entries.
_CHUNK_ENTRIES = 2_000_000


# --------------------------------------------------------------------------- input checks


def _labels(y_true, n_classes: int | None = None, name: str = "y_true") -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"{name}: expected integer class labels of shape [N], got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"{name}: no jets (shape {y.shape})")
    if y.dtype == bool:
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(y == np.round(y)):
            raise ValueError(f"{name}: expected integer class labels, got dtype {y.dtype}")
        y = y.astype(np.int64)
    hi = n_classes if n_classes is not None else 2
    if y.min() < 0 or y.max() >= hi:
        what = f"{n_classes} classes of probs" if n_classes is not None else "binary labels"
        raise ValueError(
            f"{name}: labels must lie in [0, {hi - 1}] for {what}, got values in [{y.min()}, {y.max()}]"
        )
    return y


def _probs(probs, n: int, name: str = "probs") -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != n or p.shape[1] < 2:
        raise ValueError(f"{name}: expected class probabilities of shape [N={n}, C>=2], got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name}: contains nan or inf")
    return p


def _labels_probs(y_true, probs) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true: expected integer class labels of shape [N], got shape {y.shape}")
    p = _probs(probs, y.shape[0])
    return _labels(y, p.shape[1]), p


def _binary(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = _labels(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != y.shape:
        raise ValueError(
            f"scores: expected one signal score per jet, shape [N={y.size}] like y_true, got shape {s.shape}"
            + ("; for [N, 2] probabilities pass probs[:, signal_index]" if s.ndim == 2 else "")
        )
    if not np.all(np.isfinite(s)):
        raise ValueError("scores: contains nan or inf")
    n_sig = int(y.sum())
    if n_sig == 0 or n_sig == y.size:
        raise ValueError(
            f"y_true: need both signal (1) and background (0) jets, got {n_sig} signal of {y.size}"
        )
    return y.astype(bool), s


def _efficiency(value: float, name: str) -> float:
    value = float(value)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name}: expected a signal efficiency in (0, 1], got {value}")
    return value


# --------------------------------------------------------------------------- ROC machinery
# Point metrics take scikit-learn's ROC curve; bootstrap replicates come from count-weighted curves built
# here (one cumulative sum per chunk of resamples). Both are read with the same rules (_fpr_at, _max_sic).


def _sort_jets(is_signal: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order jets by descending score; also the last position of each distinct score."""
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    return order, is_signal[order], ends


def _roc_sorted(is_signal_sorted, ends, w) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, passing background weight) at each threshold, leading (0, 0) included.

    ``w`` ``[B, N]`` (bootstrap counts, in sorted order) gives ``B`` curves at once; with all
    counts 1 it is the point curve of :func:`roc_curve`.
    """
    shape = w.shape[:-1] + (w.shape[-1] + 1,)
    passed, tp = np.zeros(shape, dtype=w.dtype), np.zeros(shape, dtype=w.dtype)
    np.cumsum(w, axis=-1, out=passed[..., 1:])
    np.cumsum(w * is_signal_sorted, axis=-1, out=tp[..., 1:])
    if ends.size < is_signal_sorted.size:  # ties: keep the last jet of each distinct score
        keep = np.r_[0, ends + 1]
        passed, tp = passed[..., keep], tp[..., keep]
    fp = passed - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return fp / fp[..., -1:], tp / tp[..., -1:], fp


def _auc(fpr, tpr) -> np.ndarray:
    return np.sum(np.diff(fpr, axis=-1) * (tpr[..., 1:] + tpr[..., :-1]), axis=-1) / 2.0


def _fpr_at(fpr, tpr, target: float) -> np.ndarray:
    """eps_B on the piecewise-linear ROC at eps_S = target (lowest eps_B on a horizontal run)."""
    k = np.argmax(tpr >= target, axis=-1)[..., None]
    k0 = np.maximum(k - 1, 0)
    t0, t1 = np.take_along_axis(tpr, k0, -1), np.take_along_axis(tpr, k, -1)
    f0, f1 = np.take_along_axis(fpr, k0, -1), np.take_along_axis(fpr, k, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(t1 > t0, (target - t0) / (t1 - t0), 0.0)
    undefined = np.isnan(tpr[..., -1:]) | np.isnan(fpr[..., -1:])  # no signal or no background
    return np.where(undefined, np.nan, f0 + frac * (f1 - f0))[..., 0]


def _inverse(x):
    with np.errstate(divide="ignore"):
        return 1.0 / x


def _max_sic(fpr, tpr, fp_count, min_background: float) -> np.ndarray:
    ok = fp_count >= max(min_background, np.finfo(float).tiny)
    with np.errstate(invalid="ignore", divide="ignore"):
        sic = np.where(ok, tpr / np.sqrt(fpr), -np.inf)
    best = sic.max(axis=-1)
    return np.where(np.isfinite(best), best, np.nan)


# --------------------------------------------------------------------------- point metrics


def accuracy(y_true, probs) -> float:
    """Fraction of jets whose argmax class is the true class (scikit-learn's ``accuracy_score``)."""
    y, p = _labels_probs(y_true, probs)
    return float(skm.accuracy_score(y, np.argmax(p, axis=1)))


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eps_B, eps_S, thresholds) at every distinct threshold, starting at (0, 0, inf).

    A jet passes a threshold when ``score >= threshold``. ``y_true`` is 1 for signal. This is
    scikit-learn's ``roc_curve`` with ``drop_intermediate=False`` (its first threshold is ``inf``).
    """
    is_signal, s = _binary(y_true, scores)
    return skm.roc_curve(is_signal, s, drop_intermediate=False)


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve (binary; ``y_true`` 1 = signal; scikit-learn's ``roc_auc_score``)."""
    return float(skm.roc_auc_score(*_binary(y_true, scores)))


def auc_one_vs_rest(y_true, probs) -> tuple[np.ndarray, float]:
    """Per-class one-vs-rest AUC ``[C]`` (score ``probs[:, c]``) and their unweighted (macro) mean."""
    y, p = _labels_probs(y_true, probs)
    per_class = np.array([roc_auc(y == c, p[:, c]) for c in range(p.shape[1])])
    return per_class, float(per_class.mean())


def background_rejection(y_true, scores, signal_efficiency: float) -> float:
    """1/eps_B at ``signal_efficiency`` (interpolated on the ROC curve; ``inf`` if eps_B = 0)."""
    target = _efficiency(signal_efficiency, "signal_efficiency")
    fpr, tpr, _ = roc_curve(y_true, scores)
    return float(_inverse(_fpr_at(fpr, tpr, target)))


def inverse_fpr_at_tpr(y_true, scores, tpr: float = INVERSE_FPR_TPR) -> float:
    """1/FPR at a fixed TPR (003's figure, at TPR 0.7); the same as :func:`background_rejection`."""
    return background_rejection(y_true, scores, _efficiency(tpr, "tpr"))


def sic_curve(y_true, scores, min_background: float = SIC_MIN_BACKGROUND) -> tuple[np.ndarray, np.ndarray]:
    """Significance improvement eps_S/sqrt(eps_B) versus eps_S: returns ``(eps_S, sic)``.

    Only thresholds passing at least ``min_background`` background jets are kept: below
    that 1/sqrt(eps_B) is dominated by the statistics of a handful of jets (and infinite at 0).
    """
    is_signal, s = _binary(y_true, scores)
    fpr, tpr, _ = skm.roc_curve(is_signal, s, drop_intermediate=False)
    fp = np.rint(fpr * np.count_nonzero(~is_signal))  # passing background jets (fpr = count / N_B)
    keep = fp >= max(min_background, np.finfo(float).tiny)
    return tpr[keep], tpr[keep] / np.sqrt(fpr[keep])


def max_sic(y_true, scores, min_background: float = SIC_MIN_BACKGROUND) -> float:
    """Maximum of :func:`sic_curve` (``nan`` if no threshold passes ``min_background`` jets)."""
    _, sic = sic_curve(y_true, scores, min_background)
    return float(sic.max()) if sic.size else math.nan


def confusion_matrix(y_true, probs, normalize: str | None = None) -> np.ndarray:
    """``[C, C]`` matrix, rows = true class, columns = argmax class (scikit-learn's ``confusion_matrix``).

    ``normalize=None`` gives counts (int64); ``"true"`` divides each row by its count, so the
    diagonal is the per-class efficiency (rows with no jets stay 0); ``"pred"`` and ``"all"``
    normalize columns and the whole matrix, as in scikit-learn.
    """
    y, p = _labels_probs(y_true, probs)
    return skm.confusion_matrix(y, np.argmax(p, axis=1), labels=np.arange(p.shape[1]), normalize=normalize)


def _cut_threshold(is_signal, scores, signal_efficiency: float) -> float:
    """The score threshold (``score >= t`` passes) that keeps the ceil(eps_S * N_signal) highest-scoring signal jets."""
    target = _efficiency(signal_efficiency, "signal_efficiency")
    signal_desc = np.sort(scores[is_signal])[::-1]
    return float(signal_desc[max(1, math.ceil(round(target * signal_desc.size, 9))) - 1])


def mass_sculpting_jsd(y_true, scores, mass, signal_efficiency: float = 0.5, bins=40, mass_range=None) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of the background mass before and after a cut.

    The cut (``score >= threshold``) keeps the ceil(eps_S * N_signal) highest-scoring signal jets. 0 means
    the tagger leaves the background mass spectrum unsculpted; 001 (Fig. 7, from DisCo) quotes
    1/JSD at eps_S = 50%. ``mass`` is in GeV; ``bins``/``mass_range`` as in ``np.histogram``.
    """
    return mass_sculpting(y_true, scores, mass, signal_efficiency, bins, mass_range)["jsd"]


def mass_sculpting(y_true, scores, mass, signal_efficiency: float = 0.5, bins=40, mass_range=None) -> dict:
    """The mass-sculpting check of a binary tagger (001 Fig. 7, from DisCo): ``{"signal_efficiency",
    "threshold", "jsd", "inverse_jsd", "background_efficiency", "edges", "before", "after"}`` (histograms of
    the background mass, GeV, before and after the cut at ``signal_efficiency``)."""
    is_signal, s = _binary(y_true, scores)
    m = np.asarray(mass, dtype=np.float64)
    if m.shape != s.shape:
        raise ValueError(f"mass: expected one jet mass per jet, shape [N={s.size}], got shape {m.shape}")
    threshold = _cut_threshold(is_signal, s, signal_efficiency)
    m_bkg, passed = m[~is_signal], s[~is_signal] >= threshold
    edges = np.histogram_bin_edges(m_bkg, bins=bins, range=mass_range)
    before = np.histogram(m_bkg, bins=edges)[0]
    after = np.histogram(m_bkg[passed], bins=edges)[0]
    jsd = float(distance.jensenshannon(before, after, base=2) ** 2) if passed.any() else math.nan
    return {"signal_efficiency": float(signal_efficiency), "threshold": threshold, "jsd": jsd,
            "inverse_jsd": 1.0 / jsd if jsd > 0 else math.inf, "background_efficiency": float(passed.mean()),
            "edges": edges.tolist(), "before": before.tolist(), "after": after.tolist()}


def weighted_figures(y_true, probs, class_names: Sequence[str], sample_weight, signal_class=None) -> dict:
    """Accuracy, AUC and 1/eps_B with per-jet weights (scikit-learn's weighted ROC), beside the unweighted ones:
    what a reweighted training is judged on. Binary: the signal class; multiclass: one-vs-rest AUCs."""
    y, p = _labels_probs(y_true, probs)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != y.shape or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"sample_weight: expected finite non-negative weights of shape {y.shape}, got {w.shape}")
    out = {"accuracy": float(skm.accuracy_score(y, p.argmax(axis=1), sample_weight=w))}
    names = [str(c) for c in class_names]
    if len(names) == 2:
        k = 1 if signal_class is None else _class_index(signal_class, names)
        fpr, tpr, _ = skm.roc_curve(y == k, p[:, k], sample_weight=w, drop_intermediate=False)
        out["auc"] = float(skm.auc(fpr, tpr))
        out["rejection"] = {f"{e:g}": float(_inverse(_fpr_at(fpr, tpr, e))) for e in REJECTION_EFFICIENCIES}
    else:
        per_class = {c: float(skm.roc_auc_score(y == i, p[:, i], sample_weight=w)) for i, c in enumerate(names)
                     if (y == i).any() and not (y == i).all()}
        out.update(auc_per_class=per_class, auc_mean=float(np.mean(list(per_class.values()))))
    return out


# --------------------------------------------------------------------------- bootstrap


def _roc_auc_from(roc):
    return _auc(roc[0], roc[1])


def _rejection_from(roc, signal_efficiency):
    return _inverse(_fpr_at(roc[0], roc[1], _efficiency(signal_efficiency, "signal_efficiency")))


def _inverse_fpr_from(roc, tpr=INVERSE_FPR_TPR):
    return _rejection_from(roc, tpr)


def _max_sic_from(roc, min_background=SIC_MIN_BACKGROUND):
    return _max_sic(*roc, min_background)


# Metrics whose bootstrap replicates are read off count-weighted ROC curves, all at once.
_FROM_ROC = {
    roc_auc: _roc_auc_from,
    background_rejection: _rejection_from,
    inverse_fpr_at_tpr: _inverse_fpr_from,
    max_sic: _max_sic_from,
}


def _from_roc(metric_fn):
    if metric_fn in _FROM_ROC:
        return _FROM_ROC[metric_fn]
    if isinstance(metric_fn, functools.partial) and not metric_fn.args and metric_fn.func in _FROM_ROC:
        return functools.partial(_FROM_ROC[metric_fn.func], **metric_fn.keywords)
    return None


def _bootstrap_replicates(metric_fns: Sequence[Callable], y_true, scores, n_boot: int, seed: int) -> np.ndarray:
    """``[len(metric_fns), n_boot]`` metric values on resamples (with replacement) of the jets.

    Resample ``b`` uses the same jet indices for a given (seed, N), whichever metric and path
    computes it, so replicates of different metrics (and classes) are paired.
    """
    y, s = np.asarray(y_true), np.asarray(scores)
    n = y.shape[0] if y.ndim else 0
    if int(n_boot) < 1:
        raise ValueError(f"n_boot: expected a positive number of bootstrap replicates, got {n_boot}")
    fast = [_from_roc(fn) for fn in metric_fns]
    vectorized = all(f is not None for f in fast)
    if vectorized:
        order, sig_sorted, ends = _sort_jets(*_binary(y, s))
        rank = np.empty(n, dtype=np.intp)
        rank[order] = np.arange(n)
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ENTRIES // max(n, 1))
    out = []
    for start in range(0, int(n_boot), chunk):
        idx = rng.integers(0, n, size=(min(chunk, int(n_boot) - start), n))
        if vectorized:
            flat = (rank[idx] + n * np.arange(idx.shape[0])[:, None]).ravel()
            counts = np.bincount(flat, minlength=idx.size).reshape(idx.shape)
            roc = _roc_sorted(sig_sorted, ends, counts)
            out.append(np.array([f(roc) for f in fast], dtype=np.float64).reshape(len(fast), -1))
        else:
            out.append(np.array([[fn(y[i], s[i]) for i in idx] for fn in metric_fns], dtype=np.float64))
    return np.concatenate(out, axis=1)


def _interval(point: float, replicates: np.ndarray, alpha: float) -> dict:
    valid = replicates[~np.isnan(replicates)]
    if valid.size == 0:
        low = high = math.nan
    else:
        low = float(np.quantile(valid, alpha / 2, method="lower"))
        high = float(np.quantile(valid, 1 - alpha / 2, method="higher"))
    return {"value": float(point), "low": low, "high": high, "n_boot": int(valid.size)}


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha: expected a value in (0, 1), got {alpha}")


def bootstrap_ci(
    metric_fn: Callable, y_true, scores, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> dict:
    """Percentile bootstrap interval of ``metric_fn(y_true, scores)``.

    Returns ``{"value", "low", "high", "n_boot"}``: the point estimate on all jets and the
    ``alpha/2`` and ``1 - alpha/2`` order statistics (lower/higher, no interpolation) of the
    replicates, so the interval is well defined when some replicates are ``inf`` (no background
    passing) and maps exactly under 1/x. Replicates that are ``nan`` (a resample without signal
    or background) are left out and ``n_boot`` counts the rest. Deterministic under ``seed``.

    :func:`roc_auc`, :func:`background_rejection`, :func:`inverse_fpr_at_tpr` and :func:`max_sic`
    (directly or as ``functools.partial`` with keyword arguments) sort the jets once and turn each
    resample into per-jet counts, so many replicates come from one cumulative sum; any other
    callable is called once per resample, on the same jet indices.
    """
    _check_alpha(alpha)
    point = metric_fn(y_true, scores)
    return _interval(point, _bootstrap_replicates([metric_fn], y_true, scores, n_boot, seed)[0], alpha)


# --------------------------------------------------------------------------- weighted, paired AUC bootstrap
def _weighted_auc_rows(sorted_signal, groups, weights):
    """AUC of each row of ``weights`` ``[B, N]`` (jets sorted by ascending score; ``groups``: starts of tie runs):
    the weighted probability that a signal jet scores above a background jet, ties counting one half."""
    ws = np.add.reduceat(weights * sorted_signal, groups, axis=1)
    wb = np.add.reduceat(weights * (1.0 - sorted_signal), groups, axis=1)
    below = np.cumsum(wb, axis=1) - wb
    total_s, total_b = ws.sum(axis=1), wb.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ws * (below + 0.5 * wb)).sum(axis=1) / (total_s * total_b)


def paired_auc_bootstrap(y_true, scores: dict, sample_weight=None, n_boot: int = 1000, seed: int = 0,
                         alpha: float = 0.05) -> dict:
    """Weighted ROC AUC of every score (binary ``y_true``: 1 = signal) with a percentile bootstrap interval, all
    scores on the same resamples, so that :func:`auc_difference` gives paired intervals (the orderings of 003
    and 004: is network A better than network B on the same jets?).

    Returns ``{name: {"auc", "low", "high", "replicates" [n_boot]}}``. A jet drawn k times counts k times
    its weight; each resample is a row of counts (one bincount per chunk of resamples), so the cost is a few
    array passes per score, whatever ``n_boot``.
    """
    _check_alpha(alpha)
    y = np.asarray(y_true).astype(np.float64)
    n = len(y)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    rng = np.random.default_rng(seed)
    draws = []
    chunk = max(1, _CHUNK_ENTRIES // max(n, 1))
    for start in range(0, int(n_boot), chunk):
        idx = rng.integers(0, n, size=(min(chunk, int(n_boot) - start), n))
        flat = (idx + n * np.arange(idx.shape[0])[:, None]).ravel()
        draws.append(np.bincount(flat, minlength=idx.size).reshape(idx.shape).astype(np.float64))
    out = {}
    for name, s in scores.items():
        s = np.asarray(s, np.float64)
        order = np.argsort(s, kind="stable")
        ss = s[order]
        groups = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
        sig, wo = y[order], w[order][None]
        point = float(_weighted_auc_rows(sig, groups, wo)[0])
        reps = (np.concatenate([_weighted_auc_rows(sig, groups, c[:, order] * wo) for c in draws]) if draws
                else np.empty(0))
        low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2]) if reps.size else (np.nan, np.nan)
        out[name] = {"auc": point, "low": float(low), "high": float(high), "replicates": reps}
    return out


def weighted_roc_auc(y_true, scores, sample_weight=None) -> float:
    """ROC AUC with per-jet weights (ties count one half; scikit-learn's ``roc_auc_score`` to rounding)."""
    return paired_auc_bootstrap(y_true, {"auc": scores}, sample_weight, n_boot=0)["auc"]["auc"]


def auc_difference(a: dict, b: dict, alpha: float = 0.05) -> dict:
    """AUC(a) - AUC(b) of two entries of :func:`paired_auc_bootstrap`, with the percentile interval of the
    paired replicates: ``{"delta", "low", "high"}``."""
    d = a["replicates"] - b["replicates"]
    low, high = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    return {"delta": a["auc"] - b["auc"], "low": float(low), "high": float(high)}


# --------------------------------------------------------------------------- evaluation block


def _class_index(signal_class, class_names: Sequence[str]) -> int:
    if isinstance(signal_class, (int, np.integer)) and not isinstance(signal_class, bool):
        if 0 <= signal_class < len(class_names):
            return int(signal_class)
    elif signal_class in class_names:
        return list(class_names).index(signal_class)
    raise ValueError(f"signal_class: expected one of {list(class_names)} or an index, got {signal_class!r}")


def _one_vs_rest(
    is_signal, score, n_boot: int, seed: int, alpha: float, with_sic: bool = False
) -> tuple[dict, dict, np.ndarray]:
    """(figures, their ``[low, high]`` intervals, AUC replicates) for one signal definition.

    ``with_sic`` adds ``max_sic``. All ``nan`` when the test set lacks signal or background (e.g. a class
    with no jets).
    """
    fns = {
        "auc": roc_auc,
        **{f"{e:g}": functools.partial(background_rejection, signal_efficiency=e) for e in REJECTION_EFFICIENCIES},
        f"inverse_fpr_at_tpr_{INVERSE_FPR_TPR:g}": inverse_fpr_at_tpr,
        **({"max_sic": max_sic} if with_sic else {}),
    }
    if is_signal.all() or not is_signal.any():  # a class absent from (or alone in) this test set
        return {k: math.nan for k in fns}, {k: [math.nan, math.nan] for k in fns}, np.full(n_boot, np.nan)
    values = {k: fn(is_signal, score) for k, fn in fns.items()}
    if not n_boot:
        return values, {}, np.empty(0)
    reps = _bootstrap_replicates(list(fns.values()), is_signal, score, n_boot, seed)
    intervals = {}
    for k, r in zip(fns, reps):
        ci = _interval(values[k], r, alpha)
        intervals[k] = [ci["low"], ci["high"]]
    return values, intervals, reps[0]


def _nest_rejection(flat: dict) -> dict:
    """Move the "0.3", "0.5" entries of a flat figures dict under "rejection"."""
    keys = [f"{e:g}" for e in REJECTION_EFFICIENCIES]
    out = {k: v for k, v in flat.items() if k not in keys}
    out["rejection"] = {k: flat[k] for k in keys if k in flat}
    return out


def evaluate_predictions(
    y_true,
    probs,
    class_names: Sequence[str],
    signal_class=None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    sample_weight=None,
) -> dict:
    """The metrics.json block for one test set; JSON-safe (see :func:`json_safe`).

    Always: ``n_jets``, ``class_names``, ``counts`` (jets per true class), ``accuracy``,
    ``confusion_matrix`` (counts, rows true / columns argmax).

    Binary (C = 2; ``signal_class`` a name or index, default ``class_names[1]``): ``signal_class``,
    ``auc``, ``rejection`` {"0.3", "0.5"} (1/eps_B), ``inverse_fpr_at_tpr_0.7``, ``max_sic`` and
    ``max_sic_signal_efficiency``.

    Multiclass, one-vs-rest with score ``probs[:, c]``: ``auc_per_class``, ``auc_mean``,
    ``per_class`` {class: {"auc", "rejection": {"0.3", "0.5"}, "inverse_fpr_at_tpr_0.7"}}.

    ``ci``: bootstrap ``[low, high]`` at ``1 - alpha`` for every AUC, rejection and (binary) ``max_sic``
    figure, under the same keys, plus ``confidence_level``, ``n_boot`` and ``seed``. All figures and
    classes use the same resamples, so ``auc_mean`` has its own interval. ``n_boot=0`` leaves ``ci`` out.
    """
    y, p = _labels_probs(y_true, probs)
    names = [str(c) for c in class_names]
    if len(names) != p.shape[1]:
        raise ValueError(f"class_names: expected {p.shape[1]} names (one per column of probs), got {len(names)}")
    if int(n_boot) < 0:
        raise ValueError(f"n_boot: expected 0 (no intervals) or a positive count, got {n_boot}")
    _check_alpha(alpha)
    counts = np.bincount(y, minlength=len(names))
    out = {
        "n_jets": int(y.size),
        "class_names": names,
        "counts": dict(zip(names, counts.tolist())),
        "accuracy": accuracy(y, p),
        "confusion_matrix": confusion_matrix(y, p).tolist(),
    }
    ci = {"confidence_level": 1 - alpha, "n_boot": int(n_boot), "seed": int(seed)}
    if len(names) == 2:
        k = 1 if signal_class is None else _class_index(signal_class, names)
        is_signal, score = y == k, p[:, k]
        values, intervals, _ = _one_vs_rest(is_signal, score, n_boot, seed, alpha, with_sic=True)
        eff, sic = sic_curve(is_signal, score) if is_signal.any() and not is_signal.all() else ([], [])
        best = int(np.argmax(sic)) if len(sic) else None
        sic_value, sic_ci = values.pop("max_sic"), intervals.pop("max_sic", None)
        out.update(signal_class=names[k], **_nest_rejection(values))
        out["max_sic"] = sic_value
        out["max_sic_signal_efficiency"] = math.nan if best is None else float(eff[best])
        ci.update(_nest_rejection(intervals), max_sic=sic_ci)
    else:
        if signal_class is not None:
            raise ValueError(f"signal_class: only for binary tasks; {len(names)} classes are reported one-vs-rest")
        per_class, per_class_ci, auc_reps = {}, {}, []
        for i, c in enumerate(names):
            values, intervals, reps = _one_vs_rest(y == i, p[:, i], n_boot, seed, alpha)
            per_class[c], per_class_ci[c] = _nest_rejection(values), _nest_rejection(intervals)
            auc_reps.append(reps)
        auc_mean = float(np.mean([v["auc"] for v in per_class.values()]))
        out.update(auc_per_class={c: v["auc"] for c, v in per_class.items()}, auc_mean=auc_mean, per_class=per_class)
        if n_boot:
            mean_ci = _interval(auc_mean, np.mean(auc_reps, axis=0), alpha)
            ci.update(
                auc_per_class={c: v["auc"] for c, v in per_class_ci.items()},
                auc_mean=[mean_ci["low"], mean_ci["high"]],
                per_class=per_class_ci,
            )
    if sample_weight is not None:
        out["weighted"] = weighted_figures(y, p, names, sample_weight, signal_class)
    if n_boot:
        out["ci"] = ci
    return json_safe(out)


# --------------------------------------------------------------------------- seeds and folds


def welch_t_test(a, b) -> tuple[float, float]:
    """Welch's unequal-variance two-sample t-test: ``(t, two-sided p)`` for mean(a) - mean(b)."""
    a, b = _sample(a, "a"), _sample(b, "b")
    res = stats.ttest_ind(a, b, equal_var=False)
    return float(res.statistic), float(res.pvalue)


def compare_seeds(metric_values_a, metric_values_b) -> dict:
    """Seed-stability comparison of two models (000, Sec. 4.2.2): one metric value per training seed.

    Returns ``{"a": {"mean", "std", "n"}, "b": {...}, "difference", "t", "p"}`` with the sample
    standard deviation (ddof=1) and Welch's t-test; JSON-safe.
    """
    a, b = _sample(metric_values_a, "metric_values_a"), _sample(metric_values_b, "metric_values_b")
    t, p = welch_t_test(a, b)
    summary = {
        k: {"mean": float(v.mean()), "std": float(v.std(ddof=1)), "n": int(v.size)} for k, v in (("a", a), ("b", b))
    }
    return json_safe({**summary, "difference": float(a.mean() - b.mean()), "t": t, "p": p})


def _sample(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"{name}: expected at least 2 values in a 1-d sequence (one per seed), got shape {v.shape}")
    return v


def _as_number(value):
    """float for numeric leaves (including the JSON strings "inf", "-inf"), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if value is None:
        return math.nan
    if isinstance(value, str) and value in ("inf", "-inf"):
        return float(value)
    return None


def _numeric_array(values):
    """Stack list-valued leaves (e.g. confusion matrices) into a float array, or None."""
    try:
        arr = np.array(values, dtype=object)
    except ValueError:
        return None
    if arr.dtype != object or arr.ndim < 2 or arr.size == 0:
        return None
    flat = [_as_number(v) for v in arr.ravel()]
    if any(v is None for v in flat):
        return None
    return np.array(flat, dtype=np.float64).reshape(arr.shape)


def mean_std_over_folds(metric_dicts: Sequence[Mapping]) -> dict:
    """Aggregate K per-fold metric dicts into one with ``{"mean", "std"}`` at each numeric leaf.

    Numbers (and "inf"/null as written by :func:`json_safe`) and equal-shape numeric lists
    (confusion matrices, intervals) are aggregated element-wise; ``std`` is the sample standard
    deviation (ddof=1; ``null`` for one fold). Other leaves (names) are kept when equal in every
    fold and listed per fold otherwise. Every dict must have the same keys. JSON-safe.
    """
    folds = list(metric_dicts)
    if not folds or not all(isinstance(d, Mapping) for d in folds):
        raise ValueError("metric_dicts: expected a non-empty sequence of dicts (one per fold)")
    return json_safe(_aggregate(folds, "metric_dicts"))


def _aggregate(values: list, where: str):
    if all(isinstance(v, Mapping) for v in values):
        keys = list(values[0])
        for i, v in enumerate(values):
            if set(v) != set(keys):
                raise ValueError(
                    f"{where}[{i}]: keys {sorted(map(str, v))} differ from fold 0's {sorted(map(str, keys))}"
                )
        return {k: _aggregate([v[k] for v in values], f"{where}.{k}") for k in keys}
    numbers = [_as_number(v) for v in values]
    arr = np.array(numbers, dtype=np.float64) if all(x is not None for x in numbers) else _numeric_array(values)
    if arr is not None:
        with np.errstate(invalid="ignore"):
            std = np.std(arr, axis=0, ddof=1) if len(values) > 1 else np.full(arr.shape[1:], np.nan)
            return {"mean": np.mean(arr, axis=0), "std": std}
    return values[0] if all(v == values[0] for v in values) else values


# --------------------------------------------------------------------------- JSON


def json_safe(obj):
    """Plain-Python copy of ``obj`` for ``json.dump``: numpy scalars/arrays become floats/lists,
    ``inf``/``-inf`` become the strings "inf"/"-inf", ``nan`` becomes ``None``; tuples become lists."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return obj
