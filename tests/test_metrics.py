"""jettf.metrics against scikit-learn / scipy on the same random predictions."""

import functools
import json

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance
from sklearn import metrics as skm

from jettf import metrics

N_SIGNAL = 997  # prime: eps_S = 0.3, 0.5, 0.7 never fall exactly on a ROC point
N_BACKGROUND = 1503


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(7)
    y = rng.permutation(np.r_[np.ones(N_SIGNAL, int), np.zeros(N_BACKGROUND, int)])
    logits = rng.normal(size=(y.size, 2))
    logits[:, 1] += 1.5 * y
    return y, _softmax(logits)


@pytest.fixture(scope="module")
def multiclass():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 5, size=3000)
    logits = rng.normal(size=(y.size, 5))
    logits[np.arange(y.size), y] += 1.0
    return y, _softmax(logits)


def _sklearn_rejection(y, scores, eps_s):
    fpr, tpr, _ = skm.roc_curve(y, scores)
    return 1.0 / np.interp(eps_s, tpr, fpr)


# ----------------------------------------------------------------------------- point metrics


def test_accuracy_and_confusion_match_sklearn(binary, multiclass):
    for y, p in (binary, multiclass):
        pred = p.argmax(axis=1)
        assert metrics.accuracy(y, p) == pytest.approx(skm.accuracy_score(y, pred), abs=1e-15)
        cm = metrics.confusion_matrix(y, p)
        np.testing.assert_array_equal(cm, skm.confusion_matrix(y, pred, labels=range(p.shape[1])))
        np.testing.assert_allclose(
            metrics.confusion_matrix(y, p, normalize="true"),
            skm.confusion_matrix(y, pred, labels=range(p.shape[1]), normalize="true"),
        )


@pytest.mark.parametrize("decimals", [None, 1])  # continuous scores, and heavily tied ones
def test_auc_roc_and_rejection_match_sklearn(binary, decimals):
    y, p = binary
    s = p[:, 1] if decimals is None else np.round(p[:, 1], decimals)
    assert metrics.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, thr = metrics.roc_curve(y, s)
    ref_fpr, ref_tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert thr[0] == np.inf and np.all(np.diff(thr[1:]) < 0)
    for eps in (0.3, 0.5):
        assert metrics.background_rejection(y, s, eps) == pytest.approx(_sklearn_rejection(y, s, eps), rel=1e-10)
    assert metrics.inverse_fpr_at_tpr(y, s) == pytest.approx(_sklearn_rejection(y, s, 0.7), rel=1e-10)
    assert metrics.inverse_fpr_at_tpr(y, s, 0.7) == metrics.background_rejection(y, s, 0.7)


def test_rejection_takes_lowest_eps_b_on_a_horizontal_run():
    # signal, background, background, signal: eps_S = 0.5 is reached at eps_B = 0, stays until eps_B = 1.
    y, s = np.array([1, 0, 0, 1]), np.array([0.9, 0.8, 0.7, 0.6])
    assert metrics.background_rejection(y, s, 0.5) == np.inf
    assert metrics.background_rejection(y, s, 0.75) == pytest.approx(1.0)
    # ties between signal and background: the ROC segment is diagonal and interpolated
    y, s = np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.2, 0.2])
    assert metrics.background_rejection(y, s, 0.25) == pytest.approx(4.0)


@pytest.mark.parametrize("case", ["continuous", "ties", "all_tied", "one_signal", "float32"])
def test_point_metrics_are_sklearn_point_for_point(binary, case):
    """Fails if a point metric drifts from scikit-learn (unweighted), ties and degenerate inputs included."""
    y, p = binary
    s = {
        "continuous": p[:, 1],
        "ties": np.round(p[:, 1], 2),
        "all_tied": np.full(y.size, 0.5),
        "one_signal": p[:, 1],
        "float32": p[:, 1].astype(np.float32),
    }[case]
    if case == "one_signal":
        y = np.zeros_like(y)
        y[np.argmin(s)] = 1  # a single signal jet, scored lowest
    ref = skm.roc_curve(y, np.asarray(s, np.float64), drop_intermediate=False)
    for got, want in zip(metrics.roc_curve(y, s), ref):
        np.testing.assert_array_equal(got, want)
    assert metrics.roc_auc(y, s) == skm.roc_auc_score(y, np.asarray(s, np.float64))
    fpr, tpr, _ = ref
    n_bkg = (y == 0).sum()
    for min_bkg in (1, 10):
        keep = np.rint(fpr * n_bkg) >= min_bkg
        eff, sic = metrics.sic_curve(y, s, min_background=min_bkg)
        np.testing.assert_array_equal(eff, tpr[keep])
        np.testing.assert_allclose(sic, tpr[keep] / np.sqrt(fpr[keep]), rtol=1e-15)
        np.testing.assert_equal(metrics.max_sic(y, s, min_bkg), sic.max() if sic.size else np.nan)


def test_bootstrap_curve_with_unit_counts_equals_sklearn_point_values(binary):
    """The bootstrap's own ROC (from per-jet counts) must agree with the sklearn-based point functions."""
    y, p = binary
    for s in (p[:, 1], np.round(p[:, 1], 1), np.round(p[:, 1], 3)):
        order, sig_sorted, ends = metrics._sort_jets(y.astype(bool), s)
        roc = metrics._roc_sorted(sig_sorted, ends, np.ones((1, y.size), np.int64))
        fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
        np.testing.assert_allclose(roc[0][0], fpr, rtol=0, atol=1e-15)
        np.testing.assert_allclose(roc[1][0], tpr, rtol=0, atol=1e-15)
        assert metrics._roc_auc_from(roc)[0] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
        for eps in (0.3, 0.5, 0.7, 1.0):
            assert metrics._rejection_from(roc, eps)[0] == pytest.approx(
                metrics.background_rejection(y, s, eps), rel=1e-12
            )
        assert metrics._inverse_fpr_from(roc)[0] == pytest.approx(metrics.inverse_fpr_at_tpr(y, s), rel=1e-12)
        for min_bkg in (1, 10, 50):
            assert metrics._max_sic_from(roc, min_bkg)[0] == pytest.approx(metrics.max_sic(y, s, min_bkg), rel=1e-12)


def test_confusion_and_accuracy_with_absent_classes_match_sklearn():
    y = np.array([0, 0, 2, 2, 2, 0])  # class 1 never true, class 3 never true nor predicted
    p = np.eye(4)[[0, 1, 2, 0, 2, 1]] * 0.7 + 0.075
    pred = p.argmax(axis=1)
    assert metrics.accuracy(y, p) == skm.accuracy_score(y, pred) == 0.5
    cm = metrics.confusion_matrix(y, p)
    assert cm.dtype == np.int64 and cm.shape == (4, 4)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, pred, labels=range(4)))
    for norm in ("true", "pred", "all"):
        got = metrics.confusion_matrix(y, p, normalize=norm)
        np.testing.assert_array_equal(got, skm.confusion_matrix(y, pred, labels=range(4), normalize=norm))
    assert np.all(metrics.confusion_matrix(y, p, normalize="true")[[1, 3]] == 0)  # rows without jets stay 0
    with pytest.raises(ValueError, match="normalize"):
        metrics.confusion_matrix(y, p, normalize="rows")
    with pytest.raises(ValueError, match="y_true: need both signal"):  # one-vs-rest of an absent class
        metrics.auc_one_vs_rest(y, p)


def test_one_vs_rest_auc_matches_sklearn(multiclass):
    y, p = multiclass
    per_class, mean = metrics.auc_one_vs_rest(y, p)
    ref = [skm.roc_auc_score(y == c, p[:, c]) for c in range(5)]
    np.testing.assert_allclose(per_class, ref, atol=1e-12)
    assert mean == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-12)


def test_limits_perfect_and_random():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20000)
    perfect = y + 0.1 * rng.random(y.size)
    assert metrics.roc_auc(y, perfect) == 1.0
    assert metrics.background_rejection(y, perfect, 0.5) == np.inf
    assert metrics.max_sic(y, perfect) == pytest.approx(1 / np.sqrt(10 / (y == 0).sum()))
    random = rng.random(y.size)
    assert metrics.roc_auc(y, random) == pytest.approx(0.5, abs=0.02)
    assert metrics.background_rejection(y, random, 0.3) == pytest.approx(1 / 0.3, rel=0.1)
    eff, sic = metrics.sic_curve(y, random)
    np.testing.assert_allclose(sic[eff > 0.1], np.sqrt(eff[eff > 0.1]), rtol=0.15)


def test_sic_curve_against_sklearn_roc(binary):
    y, p = binary
    eff, sic = metrics.sic_curve(y, p[:, 1], min_background=1)
    fpr, tpr, _ = skm.roc_curve(y, p[:, 1], drop_intermediate=False)
    keep = fpr > 0
    np.testing.assert_allclose(eff, tpr[keep])
    np.testing.assert_allclose(sic, tpr[keep] / np.sqrt(fpr[keep]))
    assert metrics.max_sic(y, p[:, 1], min_background=10) <= sic.max()


def test_mass_sculpting_jsd_against_scipy():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 4000)
    mass = rng.uniform(20, 300, y.size)
    score = rng.random(y.size) + 0.3 * y
    assert metrics.mass_sculpting_jsd(y, score, mass) < 0.05  # score ignores mass: only binning noise
    sculpted = np.where(y == 1, 0.5 + rng.random(y.size), 0.5 + mass / 300)  # background passes at high mass
    n_sig = (y == 1).sum()
    threshold = np.sort(sculpted[y == 1])[::-1][int(np.ceil(0.5 * n_sig)) - 1]  # eps_S = 0.5
    edges = np.histogram_bin_edges(mass[y == 0], bins=40)
    before = np.histogram(mass[y == 0], edges)[0]
    after = np.histogram(mass[(y == 0) & (sculpted >= threshold)], edges)[0]
    got = metrics.mass_sculpting_jsd(y, sculpted, mass, signal_efficiency=0.5)
    assert got == pytest.approx(distance.jensenshannon(before, after, base=2) ** 2)
    assert got > 0.2


# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_estimate_and_is_deterministic(binary):
    y, p = binary
    s = p[:, 1]
    for fn in (metrics.roc_auc, functools.partial(metrics.background_rejection, signal_efficiency=0.3)):
        a = metrics.bootstrap_ci(fn, y, s, n_boot=300, seed=5)
        assert a == metrics.bootstrap_ci(fn, y, s, n_boot=300, seed=5)
        assert a != metrics.bootstrap_ci(fn, y, s, n_boot=300, seed=6)
        assert a["low"] < a["value"] < a["high"] and a["n_boot"] == 300
        assert a["value"] == fn(y, s)
    # AUC standard error ~ sqrt(AUC (1 - AUC) / min(n_s, n_b)) sets the width
    auc = metrics.bootstrap_ci(metrics.roc_auc, y, s, n_boot=300, seed=5)
    assert 0.01 < auc["high"] - auc["low"] < 0.08


def test_vectorized_bootstrap_equals_per_resample_loop(binary, monkeypatch):
    y, p = binary
    s = p[:, 1]
    fns = [
        metrics.roc_auc,
        functools.partial(metrics.background_rejection, signal_efficiency=0.5),
        metrics.inverse_fpr_at_tpr,
        metrics.max_sic,
    ]
    fast = metrics._bootstrap_replicates(fns, y, s, 40, seed=9)
    slow = metrics._bootstrap_replicates([lambda a, b, f=f: f(a, b) for f in fns], y, s, 40, seed=9)
    np.testing.assert_allclose(fast, slow, rtol=1e-12)
    monkeypatch.setattr(metrics, "_CHUNK_ENTRIES", 3 * y.size)  # chunking must not change the resamples
    np.testing.assert_allclose(metrics._bootstrap_replicates(fns, y, s, 40, seed=9), fast, rtol=1e-12)


def test_bootstrap_generic_metric_and_inf_replicates():
    y = np.array([1] * 6 + [0] * 6)
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.1, 0.5, 0.4, 0.3, 0.2, 0.05, 0.0])
    at_half = functools.partial(metrics.background_rejection, signal_efficiency=0.5)
    rej = metrics.bootstrap_ci(at_half, y, s, n_boot=200, seed=1)
    assert rej["value"] == np.inf and rej["high"] == np.inf and rej["n_boot"] <= 200
    acc = metrics.bootstrap_ci(lambda a, b: float(np.mean((b > 0.45) == a)), y, s, n_boot=100, seed=1)
    assert acc["low"] <= acc["value"] <= acc["high"]


# ----------------------------------------------------------------------------- evaluation block


def test_evaluate_binary_block(binary):
    y, p = binary
    out = metrics.evaluate_predictions(y, p, ["qcd", "top"], n_boot=50, seed=2)
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text) == out
    assert out["signal_class"] == "top" and out["counts"] == {"qcd": N_BACKGROUND, "top": N_SIGNAL}
    assert out["auc"] == pytest.approx(skm.roc_auc_score(y, p[:, 1]))
    assert out["rejection"]["0.3"] == pytest.approx(_sklearn_rejection(y, p[:, 1], 0.3))
    assert out["inverse_fpr_at_tpr_0.7"] == pytest.approx(_sklearn_rejection(y, p[:, 1], 0.7))
    assert out["confusion_matrix"] == skm.confusion_matrix(y, p.argmax(1)).tolist()
    assert out["ci"]["auc"][0] < out["auc"] < out["ci"]["auc"][1]
    assert set(out["ci"]["rejection"]) == {"0.3", "0.5"}
    assert out["max_sic"] == pytest.approx(metrics.max_sic(y, p[:, 1]))
    # an interval for every reported figure (the report table promises one per row)
    assert set(out["ci"]) == {"confidence_level", "n_boot", "seed", "auc", "rejection", "inverse_fpr_at_tpr_0.7",
                              "max_sic"}
    for key in ("inverse_fpr_at_tpr_0.7", "max_sic"):
        lo, hi = out["ci"][key]
        assert 0 < lo < hi and lo < out[key] * 1.5 and hi > out[key] / 1.5
    reps = metrics._bootstrap_replicates([metrics.max_sic], y, p[:, 1], 50, seed=2)[0]
    assert out["ci"]["max_sic"] == [np.quantile(reps, 0.025, method="lower"), np.quantile(reps, 0.975, method="higher")]
    flipped = metrics.evaluate_predictions(1 - y, p[:, ::-1], ["top", "qcd"], signal_class="top", n_boot=0)
    assert flipped["auc"] == pytest.approx(out["auc"]) and "ci" not in flipped


def test_evaluate_multiclass_block_and_inf_as_string(multiclass):
    y, p = multiclass
    names = ["g", "q", "t", "w", "z"]
    out = metrics.evaluate_predictions(y, p, names, n_boot=30, seed=0)
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    per_class, mean = metrics.auc_one_vs_rest(y, p)
    assert out["auc_per_class"] == pytest.approx(dict(zip(names, per_class)))
    assert out["auc_mean"] == pytest.approx(mean)
    assert out["per_class"]["t"]["rejection"]["0.5"] == pytest.approx(_sklearn_rejection(y == 2, p[:, 2], 0.5))
    lo, hi = out["ci"]["auc_mean"]
    assert lo < mean < hi
    # a perfect tagger: rejection is infinite and written as "inf"
    perfect = metrics.evaluate_predictions(y, np.eye(5)[y] * 0.9 + 0.02, names, n_boot=0)
    assert perfect["per_class"]["g"]["rejection"]["0.3"] == "inf"
    assert json.loads(json.dumps(perfect, allow_nan=False))["auc_mean"] == 1.0
    # a class without jets: its figures are null, the rest are still reported
    missing = metrics.evaluate_predictions(y[y != 4], p[y != 4], names, n_boot=10)
    assert missing["counts"]["z"] == 0 and missing["auc_per_class"]["z"] is None
    assert missing["auc_per_class"]["g"] is not None and missing["ci"]["auc_per_class"]["z"] == [None, None]


def test_bad_shapes_and_labels_are_named(binary):
    y, p = binary
    with pytest.raises(ValueError, match=r"probs: expected class probabilities of shape \[N=2500, C>=2\]"):
        metrics.accuracy(y, p[:10])
    with pytest.raises(ValueError, match=r"y_true: expected integer class labels of shape \[N\]"):
        metrics.accuracy(y[:, None], p)
    with pytest.raises(ValueError, match=r"y_true: labels must lie in \[0, 1\]"):
        metrics.confusion_matrix(y + 1, p)
    with pytest.raises(ValueError, match=r"scores: expected one signal score per jet.*probs\[:, signal_index\]"):
        metrics.roc_auc(y, p)
    with pytest.raises(ValueError, match="y_true: need both signal"):
        metrics.roc_auc(np.ones(5, int), np.arange(5.0))
    with pytest.raises(ValueError, match=r"signal_efficiency: expected a signal efficiency in \(0, 1\]"):
        metrics.background_rejection(y, p[:, 1], 30)
    with pytest.raises(ValueError, match="class_names: expected 2 names"):
        metrics.evaluate_predictions(y, p, ["a", "b", "c"])
    with pytest.raises(ValueError, match="signal_class: expected one of"):
        metrics.evaluate_predictions(y, p, ["a", "b"], signal_class="top")
    with pytest.raises(ValueError, match="y_true: expected integer class labels, got dtype"):
        metrics.accuracy(y + 0.5, p)


# ----------------------------------------------------------------------------- seeds and folds


def test_welch_t_test_and_compare_seeds_match_scipy():
    a = [0.9257, 0.9261, 0.9252, 0.9259, 0.9255]
    b = [0.9342, 0.9344, 0.9340, 0.9341, 0.9343]
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert metrics.welch_t_test(a, b) == pytest.approx((ref.statistic, ref.pvalue))
    out = metrics.compare_seeds(a, b)
    assert out["a"]["mean"] == pytest.approx(np.mean(a)) and out["b"]["std"] == pytest.approx(np.std(b, ddof=1))
    assert out["t"] == pytest.approx(ref.statistic) and out["p"] == pytest.approx(ref.pvalue)
    assert out["difference"] == pytest.approx(np.mean(a) - np.mean(b))
    json.dumps(out, allow_nan=False)
    with pytest.raises(ValueError, match="metric_values_a: expected at least 2 values"):
        metrics.compare_seeds([0.9], b)


def test_mean_std_over_folds():
    folds = [
        {"accuracy": 0.7, "auc": {"g": 0.8}, "rejection": "inf", "cm": [[1, 2], [3, 4]], "names": ["g", "q"]},
        {"accuracy": 0.8, "auc": {"g": 0.9}, "rejection": 10.0, "cm": [[3, 2], [1, 0]], "names": ["g", "q"]},
    ]
    out = metrics.mean_std_over_folds(folds)
    assert out["accuracy"] == pytest.approx({"mean": 0.75, "std": np.std([0.7, 0.8], ddof=1)})
    assert out["auc"]["g"]["mean"] == pytest.approx(0.85)
    assert out["rejection"] == {"mean": "inf", "std": None}
    assert out["cm"]["mean"] == [[2.0, 2.0], [2.0, 2.0]] and out["names"] == ["g", "q"]
    json.dumps(out, allow_nan=False)
    assert metrics.mean_std_over_folds(folds[:1])["accuracy"] == {"mean": 0.7, "std": None}
    with pytest.raises(ValueError, match=r"metric_dicts\[1\]: keys"):
        metrics.mean_std_over_folds([{"a": 1}, {"b": 1}])
