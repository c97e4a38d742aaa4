"""Sample weights (``--reweight``) and the mass-sculpting check: they do what they say, on numbers we can predict."""

from __future__ import annotations

import numpy as np
import pytest

from jettf import metrics as jm
from jettf.training.reweight import Reweighting, fit_reweighting


def _jets(rng, n, label, pt, mass):
    jet = np.zeros((n, 4))
    jet[:, 0], jet[:, 3] = pt, mass
    return np.full(n, label), jet


def _sample(rng, n=40_000):
    """QCD-like background (falling pt, falling mass) and top-like signal (flatter pt, mass peak at 175 GeV)."""
    yb, jb = _jets(rng, n, 0, 550 + rng.exponential(40, n), rng.exponential(60, n))
    ys, js = _jets(rng, n, 1, rng.uniform(550, 650, n), rng.normal(175, 20, n))
    return np.concatenate([yb, ys]), np.concatenate([jb, js])


def _deviation(values, weights, edges, target):
    """Largest deviation of the weighted, normalised histogram from ``target``, in units of its Poisson error."""
    h, _ = np.histogram(values, bins=edges, weights=weights)
    h2, _ = np.histogram(values, bins=edges, weights=weights ** 2)
    total = h.sum()
    return float(np.max(np.abs(h / total - target) / (np.sqrt(h2) / total)))


def test_pt_weights_give_the_background_the_signal_pt_spectrum():
    rng = np.random.default_rng(0)
    labels, jet = _sample(rng)
    rw = fit_reweighting("pt", labels, jet, n_classes=2, signal=1)
    test_labels, test_jet = _sample(np.random.default_rng(1))  # independent jets: not the fit's own histogram
    w = rw.weights(test_labels, test_jet)
    edges = np.linspace(560, 640, 9)
    bkg, sig = test_labels == 0, test_labels == 1
    signal_shape, _ = np.histogram(test_jet[sig, 0], bins=edges)
    target = signal_shape / signal_shape.sum()
    assert _deviation(test_jet[bkg, 0], w[bkg], edges, target) < 5  # matches within statistics
    assert _deviation(test_jet[bkg, 0], np.ones(bkg.sum()), edges, target) > 50  # and did not before
    np.testing.assert_array_equal(w[sig], 1.0)  # the signal keeps weight 1
    assert w[bkg].mean() == pytest.approx(1.0, rel=0.05)


def test_pt_mass_weights_flatten_mass_and_keep_the_signal_pt(tmp_path):
    rng = np.random.default_rng(2)
    labels, jet = _sample(rng)
    rw = fit_reweighting("pt,mass", labels, jet, n_classes=2, signal=1)
    test_labels, test_jet = _sample(np.random.default_rng(3))
    w = rw.weights(test_labels, test_jet)
    for c, (low, high) in ((0, (30.0, 200.0)), (1, (140.0, 210.0))):  # where each class has jets to weight
        edges = rw.edges[1]
        mass_edges = edges[(edges >= low) & (edges <= high)]  # the weights' own mass bins (their resolution)
        members = (test_labels == c) & (test_jet[:, 3] > mass_edges[0]) & (test_jet[:, 3] < mass_edges[-1])
        flat = np.full(len(mass_edges) - 1, 1 / (len(mass_edges) - 1))
        assert _deviation(test_jet[members, 3], w[members], mass_edges, flat) < 6, c
        assert _deviation(test_jet[members, 3], np.ones(members.sum()), mass_edges, flat) > 20, c
    # Weights round-trip through the run directory's JSON, and TensorFlow gives the same numbers.
    again = Reweighting.from_dict(rw.to_dict())
    np.testing.assert_array_equal(again.weights(test_labels, test_jet), w)
    np.testing.assert_allclose(np.asarray(rw.weights_tf(test_labels[:500], test_jet[:500].astype("float32"))),
                               w[:500], rtol=1e-6)
    with pytest.raises(ValueError, match="--reweight: expected one of"):
        fit_reweighting("eta", labels, jet, 2, 1)


def test_reweighting_pythia_jets_flattens_their_background_pt(pythia_jets):
    jets = pythia_jets("top_tagging", n_jets=64, seed=1)
    jet = np.stack([jets.jet_pt, jets.jet_eta, jets.jet_phi, jets.jet_mass], axis=1)
    rw = fit_reweighting("pt", jets.labels, jet, n_classes=2, signal=1, bins=4)
    w = rw.weights(jets.labels, jet)
    edges = rw.edges[0]
    bkg, sig = jets.labels == 0, jets.labels == 1
    pt = np.clip(jet[:, 0], edges[0], edges[-1])  # jets beyond the edges count in the edge bins, as weighted
    h_sig = np.histogram(pt[sig], bins=edges)[0]
    h_bkg = np.histogram(pt[bkg], bins=edges, weights=w[bkg])[0]
    np.testing.assert_allclose(h_bkg / h_bkg.sum(), h_sig / h_sig.sum(), rtol=1e-5)  # exact on the fitted jets


def test_a_score_equal_to_the_mass_sculpts_and_a_random_one_does_not():
    rng = np.random.default_rng(4)
    labels, jet = _sample(rng, 20_000)
    mass = jet[:, 3]
    by_mass = jm.mass_sculpting(labels, mass, mass)
    by_chance = jm.mass_sculpting(labels, rng.random(len(labels)), mass)
    assert by_mass["inverse_jsd"] < 3 and by_chance["inverse_jsd"] > 100, (by_mass, by_chance)
    assert by_mass["signal_efficiency"] == 0.5 and sum(by_mass["before"]) == 20_000
    assert jm.mass_sculpting_jsd(labels, mass, mass) == by_mass["jsd"]
    # Weighted figures: uniform weights change nothing.
    probs = np.stack([1 - mass / mass.max(), mass / mass.max()], axis=1)
    weighted = jm.weighted_figures(labels, probs, ["qcd", "top"], np.ones(len(labels)))
    plain = jm.evaluate_predictions(labels, probs, ["qcd", "top"], n_boot=0)
    assert weighted["auc"] == pytest.approx(plain["auc"]) and weighted["accuracy"] == pytest.approx(plain["accuracy"])
