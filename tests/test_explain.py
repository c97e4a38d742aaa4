"""Tests of jettf.explain: ADO, disagreement sets, Pearson / average maps, Grad-CAM, EFPs, the guided search."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from jettf import metrics
from jettf.explain.ado import ado, decision_ordering, disagreement_pairs, kendall_s, random_pairs
from jettf.explain.images import class_averages, difference_image, pearson_map

REPO = Path(__file__).resolve().parents[1]


# ============================================================================ ADO


def _brute_ado(f, g, y):
    total, count = 0.0, 0
    for i in np.flatnonzero(y == 1):
        for j in np.flatnonzero(y == 0):
            s = np.sign(f[i] - f[j]) * np.sign(g[i] - g[j])
            total += 1.0 if s > 0 else 0.0 if s < 0 else 0.5
            count += 1
    return total / count


def test_ado_matches_brute_force_double_loop_with_ties():
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(2, 30))
        levels_f, levels_g = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        f = rng.integers(0, levels_f, n).astype(float)  # few levels: many ties
        g = rng.integers(0, levels_g, n).astype(float)
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            continue
        expected = _brute_ado(f, g, y)
        assert ado(f, g, y) == pytest.approx(expected, abs=1e-12), trial
        pairs = np.array(list(itertools.product(np.flatnonzero(y == 1), np.flatnonzero(y == 0))))
        assert ado(f, g, pairs=pairs) == pytest.approx(expected, abs=1e-12)


def test_kendall_s_matches_brute_force_and_scipy():
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(0, 25))
        x, y = rng.integers(0, 4, n).astype(float), rng.integers(0, 4, n).astype(float)
        brute = sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i in range(n) for j in range(i + 1, n))
        assert kendall_s(x, y) == brute
    # a large input with ties against scipy's O(N log N) tau-b: S = tau_b sqrt((n0 - n1)(n0 - n2))
    from scipy.stats import kendalltau

    n = 20_000
    x, y = rng.integers(0, 300, n).astype(float), rng.normal(size=n).round(1)
    n0 = n * (n - 1) // 2
    ties = lambda v: int(sum(c * (c - 1) // 2 for c in np.unique(v, return_counts=True)[1]))  # noqa: E731
    expected = kendalltau(x, y).statistic * np.sqrt((n0 - ties(x)) * (n0 - ties(y)))
    assert kendall_s(x, y) == pytest.approx(expected, rel=1e-9)


def test_kendall_s_equals_vectorized_brute_force_with_ties_and_constants():
    # kendall_s comes from scipy's tau-b times the tie-corrected normalization; it must be the exact integer
    # count of concordant minus discordant pairs, also where tau-b is undefined (a constant input: S = 0)
    rng = np.random.default_rng(4)
    n = 3000
    cases = [
        (rng.integers(0, 7, n), rng.normal(size=n).round(1)),  # heavy ties in x, some in y
        (rng.normal(size=n), rng.normal(size=n)),  # no ties
        (np.arange(n), np.arange(n)),  # S = n0 (tau = 1 exactly)
        (np.arange(n), -np.arange(n) // 3),  # S = -(n0 - ties in y)
        (np.full(n, 2.0), rng.normal(size=n)),  # constant x: scipy's tau is nan
        (rng.normal(size=n), np.zeros(n)),  # constant y
    ]
    for k, (x, y) in enumerate(cases):
        x, y = np.asarray(x, float), np.asarray(y, float)
        iu = np.triu_indices(n, 1)
        brute = int(np.sum(np.sign(x[iu[0]] - x[iu[1]]) * np.sign(y[iu[0]] - y[iu[1]])))
        got = kendall_s(x, y)
        assert type(got) is int and got == brute, k
    assert kendall_s([1.0], [2.0]) == 0 and kendall_s([], []) == 0


def test_ado_identities():
    rng = np.random.default_rng(2)
    f = rng.normal(size=500)
    y = (rng.random(500) < 0.4).astype(int)
    assert ado(f, f, y) == 1.0
    assert ado(f, -f, y) == 0.0
    g = f + rng.normal(size=500)
    assert ado(f, g, y) == pytest.approx(ado(g, f, y))
    assert ado(np.exp(f), g ** 3, y) == pytest.approx(ado(f, g, y))  # only orderings matter
    # with the label as a classifier the ADO is the AUC (both count ties 1/2)
    ft = np.round(f, 1)
    assert ado(ft, y, y) == pytest.approx(metrics.roc_auc(y, ft), abs=1e-12)
    with pytest.raises(ValueError, match="both signal"):
        ado(f, g, np.ones(500))
    with pytest.raises(ValueError, match="pairs"):
        ado(f, g)


def test_disagreement_pairs_exact_and_sampled():
    rng = np.random.default_rng(3)
    n = 400
    y = (rng.random(n) < 0.5).astype(int)
    f = rng.normal(size=n) + y
    g = np.round(f + rng.normal(size=n), 1)  # ties in g
    sig, bkg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    inverted = (np.sign(f[sig, None] - f[None, bkg]) * np.sign(g[sig, None] - g[None, bkg])) < 0
    exact = disagreement_pairs(f, g, y, n_pairs=10**9)
    assert exact.exact and len(exact.pairs) == inverted.sum()
    assert exact.fraction == pytest.approx(inverted.mean())
    assert np.all(decision_ordering(f, g, exact.pairs) == 0)
    assert np.all(y[exact.pairs[:, 0]] == 1) and np.all(y[exact.pairs[:, 1]] == 0)
    few = disagreement_pairs(f, g, y, n_pairs=100, seed=5)
    assert len(few.pairs) == 100 and len(np.unique(few.pairs, axis=0)) == 100
    sampled = disagreement_pairs(f, g, y, n_pairs=5000, seed=7, exact_limit=0)
    assert not sampled.exact and len(sampled.pairs) == 5000
    assert np.all(decision_ordering(f, g, sampled.pairs) == 0)
    assert sampled.fraction == pytest.approx(inverted.mean(), abs=0.02)
    again = disagreement_pairs(f, g, y, n_pairs=5000, seed=7, exact_limit=0)
    np.testing.assert_array_equal(sampled.pairs, again.pairs)
    none = disagreement_pairs(f, f, y)
    assert len(none.pairs) == 0 and none.fraction == 0
    rp = random_pairs(y, 50, seed=1)
    assert rp.shape == (50, 2) and np.all(y[rp[:, 0]] == 1) and np.all(y[rp[:, 1]] == 0)


# ============================================================================ images


def test_pearson_map_equals_corrcoef_per_pixel():
    rng = np.random.default_rng(4)
    images = rng.gamma(1.0, size=(53, 4, 5, 2)) * (rng.random((53, 4, 5, 2)) < 0.6)
    images[:, 0, 0, 0] = 0.0  # never hit: no defined correlation
    images[:, 1, 1, 1] = 3.5  # constant
    scores = rng.random(53) + 0.3 * images[:, 2, 3, 0]
    r = pearson_map(images, scores, batch_size=7)  # several chunks: exercises the pairwise merge
    assert r.shape == (4, 5, 2)
    assert np.isnan(r[0, 0, 0]) and np.isnan(r[1, 1, 1])
    for i, j, c in itertools.product(range(4), range(5), range(2)):
        if (i, j, c) in ((0, 0, 0), (1, 1, 1)):
            continue
        assert r[i, j, c] == pytest.approx(np.corrcoef(images[:, i, j, c], scores)[0, 1], abs=1e-12)
    np.testing.assert_allclose(pearson_map(images, scores), r, atol=1e-12, equal_nan=True)
    # [N, H, W] input, constant scores -> all NaN
    assert np.isnan(pearson_map(images[..., 0], np.ones(53))).all()
    with pytest.raises(ValueError, match="probs\\[:, class_index\\]"):
        pearson_map(images, np.ones((53, 2)))


def test_class_averages_and_difference_image():
    rng = np.random.default_rng(5)
    images = rng.random((40, 3, 3, 1))
    labels = rng.integers(0, 3, 40)
    means = class_averages(images, labels, ["g", "q", "t"], batch_size=6)
    for c, name in enumerate(["g", "q", "t"]):
        np.testing.assert_allclose(means[name], images[labels == c].mean(axis=0))
    diff = difference_image(images, labels, signal=2, background=0)
    np.testing.assert_allclose(diff, images[labels == 2].mean(0) - images[labels == 0].mean(0))
    norm = difference_image(images, labels, signal=2, background=0, normalize=True)
    a, b = images[labels == 2].mean(0), images[labels == 0].mean(0)
    np.testing.assert_allclose(norm, a / a.sum() - b / b.sum())
    with pytest.raises(ValueError, match="no image has that label"):
        difference_image(images, labels, signal=7)


# ============================================================================ Grad-CAM


def _corner_data(rng, n, size=16):
    """Noise everywhere; class 1 also has a bright 4x4 blob in the corner [1:5, 1:5], the only difference."""
    x = (rng.random((n, size, size, 1)) * 0.3).astype("float32")
    y = rng.integers(0, 2, n)
    x[y == 1, 1:5, 1:5, 0] += rng.uniform(0.6, 1.0, (int((y == 1).sum()), 1, 1)).astype("float32")
    return x, y


def _tiny_cnn(keras):
    inp = keras.Input((16, 16, 1), name="image")
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1",
                            kernel_initializer=keras.initializers.GlorotUniform(1))(inp)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2",
                            kernel_initializer=keras.initializers.GlorotUniform(2))(h)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    logits = keras.layers.Dense(2, name="logits", kernel_initializer=keras.initializers.GlorotUniform(3))(h)
    out = keras.layers.Softmax(name="probabilities")(logits)
    return keras.Model({"image": inp}, out, name="tiny_cnn")


@pytest.fixture(scope="module")
def trained_tiny_cnn():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(6)
    x, y = _corner_data(rng, 512)
    model = _tiny_cnn(keras)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit({"image": x}, y, epochs=6, batch_size=32, verbose=0, shuffle=False)
    x_test, y_test = _corner_data(rng, 64)
    accuracy = float(np.mean(np.argmax(model.predict({"image": x_test}, verbose=0), axis=1) == y_test))
    return model, x_test, y_test, accuracy


@pytest.mark.slow
def test_gradcam_highlights_the_separating_region(trained_tiny_cnn):
    from jettf.explain.gradcam import find_conv_layers, grad_cam

    model, x, y, accuracy = trained_tiny_cnn
    assert accuracy > 0.9, "the tiny CNN did not learn the corner blob"
    assert find_conv_layers(model) == {"tiny_cnn": "conv2"}
    cam = grad_cam(model, x, class_index=1, class_names=["background", "signal"])
    assert cam.layers == {"tiny_cnn": "conv2"} and cam.classes == [1]
    maps = cam.maps["tiny_cnn"]
    assert maps.shape == (64, 1, 16, 16) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    mean = cam.mean_map("tiny_cnn", 1, y == 1)
    region = np.zeros((16, 16), bool)
    region[1:5, 1:5] = True
    inside, outside = mean[region].mean(), mean[~region].mean()
    assert inside > 0.5 and inside > 5 * outside, (inside, outside)
    assert np.unravel_index(np.argmax(mean), mean.shape) in {(i, j) for i in range(0, 6) for j in range(0, 6)}
    # class means for the plot; scores are the logits
    per_class = cam.class_means(y)
    assert list(per_class["tiny_cnn"]) == ["signal"]
    import keras

    logits = keras.Model(model.input, model.get_layer("logits").output).predict({"image": x}, verbose=0)
    np.testing.assert_allclose(cam.scores, logits, rtol=1e-4, atol=1e-5)


def _nested_model(keras):
    """Two nested conv backbones (like the ensemble's ResNet50 + InceptionV3) whose layers share names."""

    def backbone(name, shape, seed):
        i = keras.Input(shape)
        h = keras.layers.Conv2D(4, 3, padding="same", name="conv",
                                kernel_initializer=keras.initializers.GlorotUniform(seed))(i)
        h = keras.layers.Activation("relu", name="out")(h)
        return keras.Model(i, keras.layers.GlobalAveragePooling2D(name="pool")(h), name=name)

    image = keras.Input((16, 16, 1), name="image")
    extra = keras.Input((2,), name="global_features")
    a = backbone("branch_a", (16, 16, 1), 1)(image)
    b = backbone("branch_b", (8, 8, 1), 2)(keras.layers.Resizing(8, 8, name="resize")(image))
    z = keras.layers.Concatenate(name="concat")([a, b, extra])
    logits = keras.layers.Dense(3, name="logits", kernel_initializer=keras.initializers.GlorotUniform(3))(z)
    return keras.Model({"image": image, "global_features": extra}, keras.layers.Softmax(name="probabilities")(logits),
                       name="nested")


def test_gradcam_one_map_per_nested_branch_equals_cam():
    keras = pytest.importorskip("keras")
    from jettf.explain.gradcam import find_conv_layers, grad_cam

    model = _nested_model(keras)
    rng = np.random.default_rng(7)
    inputs = {"image": rng.random((5, 16, 16, 1)).astype("float32"),
              "global_features": rng.random((5, 2)).astype("float32")}
    assert find_conv_layers(model) == {"branch_a": "branch_a/out", "branch_b": "branch_b/out"}
    cam = grad_cam(model, inputs, normalize=False, batch_size=2)
    assert cam.maps["branch_a"].shape == (5, 3, 16, 16) and cam.maps["branch_b"].shape == (5, 3, 16, 16)
    assert cam.coarse["branch_b"].shape == (5, 3, 8, 8)
    # GAP -> Dense head: d logit_c / d A_k(i, j) = w_kc / (h w), so Grad-CAM is CAM (Zhou et al.)
    w = keras.ops.convert_to_numpy(model.get_layer("logits").kernel)
    for branch, rows, size in (("branch_a", slice(0, 4), 16), ("branch_b", slice(4, 8), 8)):
        sub = model.get_layer(branch)
        features = keras.Model(sub.input, sub.get_layer("out").output)
        image = inputs["image"] if branch == "branch_a" else keras.ops.convert_to_numpy(
            model.get_layer("resize")(inputs["image"]))
        a = np.asarray(features.predict(image, verbose=0))
        expected = np.maximum(np.einsum("nhwk,kc->nchw", a, w[rows] / size**2), 0)
        np.testing.assert_allclose(cam.coarse[branch], expected, rtol=1e-4, atol=1e-6)
    named = grad_cam(model, inputs, class_index=[2], layers={"A": "branch_a/conv"})
    assert list(named.maps) == ["A"] and named.layers == {"A": "branch_a/conv"}
    assert grad_cam(model, inputs, 0, layers="conv").layers == {"branch_a": "branch_a/conv"}
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        grad_cam(model, inputs, layers="nope")
    with pytest.raises(ValueError, match="4-D feature map"):
        grad_cam(model, inputs, layers="logits")
    with pytest.raises(ValueError, match="needs input"):
        grad_cam(model, {"image": inputs["image"]})


@pytest.mark.slow
def test_gradcam_jax_backend_matches_tensorflow(tmp_path, trained_tiny_cnn):
    pytest.importorskip("jax")
    from jettf.explain.gradcam import grad_cam

    model, x, _, _ = trained_tiny_cnn
    model.save(tmp_path / "tiny.keras")
    np.save(tmp_path / "x.npy", x[:8])
    tf_cam = grad_cam(model, x[:8])
    script = textwrap.dedent(f"""
        import numpy as np, keras
        from jettf.explain.gradcam import grad_cam
        assert keras.backend.backend() == "jax"
        model = keras.saving.load_model({str(tmp_path / 'tiny.keras')!r})
        cam = grad_cam(model, np.load({str(tmp_path / 'x.npy')!r}))
        np.save({str(tmp_path / 'jax.npy')!r}, cam.coarse["tiny_cnn"])
    """)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "jax.npy"), tf_cam.coarse["tiny_cnn"], rtol=1e-3, atol=1e-5)


# ============================================================================ EFPs and the guided search


@pytest.mark.slow
def test_efp_observables_match_energyflow(pythia_jets):
    energyflow = pytest.importorskip("energyflow")
    from jettf.explain.search import EFPGrid, efp_observables, efp_formula

    jets = pythia_jets("top_tagging", n_jets=150, seed=1).select(slice(0, 6))
    obs = efp_observables(jets, EFPGrid(dmax=2, kappas=(1.0, 2.0), betas=(0.5, 1.0)))
    assert len(set(obs.names)) == len(obs.names) and obs.values.shape == (6, len(obs.names))
    # the one-node graph is constant at kappa = 1 (dropped) and pT^D at kappa = 2 (kept once)
    assert "efp_d0_0_kappa2" in obs.names and not any(n.startswith("efp_d0_0_kappa1") for n in obs.names)
    info = obs.info[obs.index("efp_d2_0_kappa1_beta0p5")]
    assert info["edges"] == [(0, 1), (0, 1)] and info["formula"] == "sum_{a,b} z_a z_b theta_ab"
    etarel, phirel, _ = jets.relative()
    j = 3
    m = jets.mask[j]
    event = np.stack([jets.pt[j][m], etarel[j][m], phirel[j][m]], axis=1).astype(np.float64)
    reference = energyflow.EFP([(0, 1), (0, 1)], measure="hadr", beta=0.5, kappa=1, normed=True, coords="ptyphim")
    assert obs.values[j, obs.index("efp_d2_0_kappa1_beta0p5")] == pytest.approx(reference.compute(event), rel=1e-10)
    z = jets.pt[j][m].astype(np.float64) / jets.pt[j][m].sum()
    assert obs.values[j, obs.index("efp_d0_0_kappa2")] == pytest.approx(np.sum(z**2), rel=1e-6)
    assert efp_formula([(0, 1), (1, 2), (0, 2)], 3, 1.0, 1.0) == \
        "sum_{a,b,c} z_a z_b z_c theta_ab theta_ac theta_bc"


@pytest.mark.slow
def test_guided_search_on_pythia_top_jets_raises_auc(pythia_jets):
    """004's greedy search with a fast stand-in for the image network: a logistic regression on the log of every
    d <= 3 EFP and the jet mass, scored out of fold. Starting from the jet pT alone (uninformative in the
    550-650 GeV window), the search must pick observables that raise the small network's AUC at each step."""
    pytest.importorskip("energyflow")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from jettf.explain.search import EFPGrid, HLNetworkConfig, efp_observables, guided_search, jet_observables

    jets = pythia_jets("top_tagging", n_jets=150, seed=1)
    y = (jets.labels == list(jets.class_names).index("top")).astype(int)
    candidates = efp_observables(jets, EFPGrid(dmax=3, betas=(0.5, 1.0, 2.0)))
    features = np.log(np.c_[candidates.values, jets.jet_mass])
    network = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), features, y,
                                cv=5, method="predict_proba")[:, 1]
    result = guided_search(network, y, candidates, jet_observables(jets, ["jet_pt"]), max_steps=3, stop="either",
                           n_pairs=20_000, network=HLNetworkConfig(epochs=40, patience=6), seed=0)
    print("\n" + result.table() + "\n" + result.summary())
    rows = result.rows
    assert rows[0]["step"] == 0 and rows[0]["features"] == ["jet_pt"]
    kept = [r for r in rows[1:] if r["kept"]]
    assert kept, result.summary()
    assert rows[1]["added"].startswith("efp_") and rows[1]["auc"] - rows[0]["auc"] > 0.2
    for previous, row in zip(rows, rows[1:]):
        assert row["auc"] == pytest.approx(previous["auc"] + row["delta_auc"]) or not previous["kept"]
    for row in kept:
        assert row["delta_auc"] > 0 and 0 <= row["ado_disagreement"] <= 1 and 0 <= row["ado"] <= 1
    assert result.selected == [r["added"] for r in kept]
    assert "AUC rose at every kept step" in result.summary()
    # A step kept for its ADO gain while the AUC fell is named in the summary.
    fell = dataclasses.replace(result, rows=[*rows[:2], {**rows[1], "step": 2, "delta_auc": -0.001, "kept": True}])
    assert "AUC did not rise at kept step(s) 2 (kept for their ADO gain)" in fell.summary()
    table = result.table()
    assert "| AUC | ADO[network] |" in table and "network (guide)" in table
    assert all(f"{r['auc']:.4f}" in table and f"{r['ado']:.4f}" in table for r in rows)
    assert json.loads(result.to_json())["rows"][1]["added"] == rows[1]["added"]
    assert kept[-1]["auc"] > 0.85 and result.network_auc > 0.85


def test_hl_network_is_seeded():
    pytest.importorskip("keras")
    from jettf.explain.search import HLNetworkConfig, train_hl_network

    rng = np.random.default_rng(8)
    x = np.c_[rng.lognormal(size=120), rng.normal(size=120)]
    y = (np.log(x[:, 0]) + 0.5 * rng.normal(size=120) > 0).astype(int)
    config = HLNetworkConfig(epochs=5)
    a = train_hl_network(x, y, config, seed=3).score(x)
    b = train_hl_network(x, y, config, seed=3).score(x)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (120,) and np.all((a >= 0) & (a <= 1))


# ============================================================================ plots and the CLI driver


def test_plots_write_pngs_with_eta_phi_axes(tmp_path):
    from matplotlib.image import imread

    from jettf.explain.plots import plot_gradcam, plot_image_map, plot_pearson_map

    rng = np.random.default_rng(9)
    r = rng.uniform(-0.5, 0.5, (8, 8, 2))
    r[0, 0, 0] = np.nan
    path = plot_pearson_map(r, 0.4, tmp_path / "p.png", channel_names=["pt", "mass"], output_label="P(top)", dpi=50)
    assert imread(path).shape[:2] == (180, 420)
    maps = {"resnet50": {"qcd": rng.random((8, 8)), "top": rng.random((8, 8))},
            "inception_v3": {"qcd": rng.random((8, 8)), "top": rng.random((8, 8))}}
    path = plot_gradcam(maps, (-0.4, 0.4, -0.5, 0.5), tmp_path / "g.png", background={"top": rng.random((8, 8))},
                        dpi=50)
    assert imread(path).shape[:2] == (350, 400)
    assert plot_image_map(r[..., 1], 0.4, tmp_path / "m.png", diverging=True, dpi=50).exists()
    with pytest.raises(ValueError, match="extent"):
        plot_image_map(r[..., 1], (0.4, -0.4, 0, 1), tmp_path / "bad.png")
    with pytest.raises(ValueError, match="columns"):
        plot_gradcam({"a": {"x": r[..., 0]}, "b": {"y": r[..., 0]}}, 0.4, tmp_path / "bad.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png", "m.png", "p.png"]  # atomic writes leave no temps


@pytest.mark.slow
def test_run_explain_writes_maps_and_summary(tmp_path, trained_tiny_cnn):
    from matplotlib.image import imread

    from jettf.explain.__main__ import ExplainInputs, run_explain

    model, x, y, _ = trained_tiny_cnn
    inputs = ExplainInputs(model=model, images=x, labels=y, class_names=["bkg", "sig"], extent=0.4, jets=None,
                           channel_names=["pt"])
    summary = run_explain(inputs, tmp_path, gradcam_jets=8, log=lambda msg: None)
    assert summary["gradcam_layers"] == {"tiny_cnn": "conv2"} and "search" not in summary
    for name in ("average_images.png", "difference_pt.png", "pearson_sig.png", "gradcam.png"):
        assert imread(tmp_path / name).ndim == 3, name
    inside = summary["gradcam_weight_inside_r02"]["tiny_cnn"]
    assert set(inside) == {"bkg", "sig"} and all(0 <= v <= 1 for v in inside.values())
    saved = json.loads((tmp_path / "explain.json").read_text())
    assert saved["files"]["gradcam"] == "gradcam.png" and saved["n_jets"] == len(y)
    r = np.load(tmp_path / "pearson.npz")["r"]
    assert r.shape == (16, 16, 1) and np.nanmax(r[1:5, 1:5]) > 0.5  # the separating corner drives the output


def test_crop_window_and_weight_inside():
    from jettf.explain.images import crop_window, weight_inside

    image = np.arange(40 * 40).reshape(40, 40)
    np.testing.assert_array_equal(crop_window(image, 1.2, 0.96), image[4:36, 4:36])  # 40 -> 32 as the layer crops
    heat = np.zeros((10, 10))
    heat[4:6, 4:6] = 1.0  # the four central pixels, centres at |eta|, |phi| = 0.05 of a 0.5 window
    assert weight_inside(heat, 0.5, 0.2) == 1.0
    heat[0, 0] = 4.0  # a corner with as much weight again
    assert weight_inside(heat, 0.5, 0.2) == pytest.approx(0.5)
    assert np.isnan(weight_inside(np.zeros((4, 4)), 0.5, 0.2))


def test_gradcam_of_a_tagger_covers_the_prepared_window():
    """A tagger crops 20 -> 16 inside: its maps are 16 x 16 (the window the convolutions see), not 20 x 20."""
    keras = pytest.importorskip("keras")
    import jettf.models as zoo
    from jettf.explain.gradcam import grad_cam
    from jettf.images import ImagePreparation, ImageSpec

    spec = ImageSpec(npix=20, extent=1.0)
    tagger = zoo.build("lenet", 2, preparation=ImagePreparation(spec, crop=16), seed=0, filters=(4, 4),
                       kernel_size=3, dense_units=(8,))
    x = np.random.default_rng(1).random((3, 20, 20, 1)).astype("float32")
    cam = grad_cam(tagger, {"image": x})
    (branch, maps), = cam.maps.items()
    assert maps.shape == (3, 2, 16, 16)
