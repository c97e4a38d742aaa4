"""Tests for jettf.features: names, spec round trips, values against fastjet-contrib,
energyflow and brute-force numpy, degenerate jets, determinism, physics sanity.

The default (002) set is exact: every C, D2, U, M, N member on all constituents,
checked against fastjet-contrib on all constituents for jets of up to 110
constituents; the truncated option is checked on the hardest k under ``_k{k}`` names."""

from __future__ import annotations

import itertools
import json
import re
import warnings

import awkward as ak
import fastjet
import numpy as np
import pytest

import jettf.features.compute as compute_module
import jettf.features.spec as spec_module
from jettf.features import DegenerateJetWarning, FeatureSpec, compute_features, feature_validity
from jettf.features.nsubjettiness import rapidity
from jettf.features.spec import _fmt
from jettf.jets import JetBatch

RTOL = 1e-5  # float32 output vs float64 references
pytestmark = pytest.mark.filterwarnings("ignore::jettf.features.DegenerateJetWarning")


# --------------------------------------------------------------------- inputs
def random_jets(n_jets=12, n_max=40, seed=0, prongs=3):
    """Prongy jets with a steep constituent spectrum; counts from 0 to n_max."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(4, n_max + 1, n_jets)
    counts[:2] = (n_max, n_max)
    axis_eta, axis_phi = rng.normal(0, 0.3, (2, n_jets, prongs))
    which = rng.integers(0, prongs, (n_jets, n_max))
    pt = (rng.pareto(1.5, (n_jets, n_max)) + 0.1) * 5.0
    spread = np.minimum(0.04 + 0.2 / np.sqrt(pt), 0.4)
    eta = np.take_along_axis(axis_eta, which, 1) + rng.normal(0, 1, pt.shape) * spread
    phi = np.take_along_axis(axis_phi, which, 1) + rng.normal(0, 1, pt.shape) * spread + rng.uniform(-np.pi, np.pi, (n_jets, 1))
    mask = np.arange(n_max)[None, :] < counts[:, None]
    return JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta), mask=mask)


def pythia(request, n_jets=24):
    """Pythia top-tagging jets (QCD and top) from the session fixture in conftest.py."""
    return request.getfixturevalue("pythia_jets")("top_tagging", n_jets=n_jets, seed=1)


@pytest.fixture(scope="module")
def jets():
    """Twelve random jets of 4 to 64 constituents (two of 64): wider than any truncation of old (40 / 20)."""
    return random_jets(n_max=64)


def four_vectors(batch, k=None):
    """Constituents (hardest k) as an awkward array of events, as fastjet takes them."""
    b = batch.sort_by_pt()
    if k is not None:
        b = b.pad_to(min(k, b.max_constituents))
    pt, eta, phi = (a.astype(np.float64) for a in (b.pt, b.eta, b.phi))
    m = b.mask
    fields = {"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "E": b.energy.astype(np.float64)}
    return ak.unflatten(ak.zip({k: v[m] for k, v in fields.items()}), b.n_constituents)


def truncation_suffix(spec, series, n):
    """The name suffix the truncated option must carry: ``_k{k}`` for C_3, U_3, M_3, N_3 (ecf4) and U_2, M_2, N_2 (ecfg3)."""
    k = spec.ecf4_max_constituents if n == 3 else spec.ecfg3_max_constituents if (n == 2 and series != "c") else None
    return "" if k is None else f"_k{k}"


def contrib_reference(batch, spec) -> dict:
    """Every N-subjettiness and correlator feature from fastjet-contrib, on the constituents the spec uses
    (all of them unless the spec truncates; a truncated member's name ends in ``_k{k}``)."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = {}
        for key, k in (("all", None), (3, spec.ecfg3_max_constituents), (4, spec.ecf4_max_constituents)):
            definition = fastjet.JetDefinition(fastjet.cambridge_algorithm, 1000.0)
            cluster[key] = fastjet.ClusterSequence(four_vectors(batch, k), definition)

        def ecf(n_points, **kwargs):
            cs = cluster[n_points if n_points in (3, 4) else "all"]
            return ak.to_numpy(cs.exclusive_jets_energy_correlator(njets=1, **kwargs))

        ns = sorted({n for r in spec.tau_ratios for n in (r, r - 1)})
        for b in spec.tau_betas if ns else ():
            taus = cluster["all"].njettiness(
                measure_definition="NormalizedMeasure", axes_definition=spec.tau_axes, njets=ns, beta=b, R0=spec.jet_radius
            )
            taus = ak.to_numpy(taus).reshape(len(batch), len(ns))
            for r in spec.tau_ratios:
                out[f"tau{r}{r - 1}_b{_fmt(b)}"] = taus[:, ns.index(r)] / taus[:, ns.index(r - 1)]
        for n in spec.c_series:
            for b in spec.c_betas:
                name = f"c{n}_b{_fmt(b)}{truncation_suffix(spec, 'c', n)}"
                out[name] = ecf(4, func="cseries", npoint=3, beta=b) if n == 3 else ecf(2, func=f"c{n}", beta=b)
        for a, b in spec.d2_params:
            out[f"d2_a{_fmt(a)}_b{_fmt(b)}"] = ecf(2, func="generalizedd2", alpha=a, beta=b)
        for series, func in (("u", "useries"), ("m", "mseries"), ("n", "nseries")):
            for n in getattr(spec, f"{series}_series"):
                for b in getattr(spec, f"{series}_betas"):
                    out[f"{series}{n}_b{_fmt(b)}{truncation_suffix(spec, series, n)}"] = ecf(n + 1, func=func, npoint=n, beta=b)
    return out


def assert_matches_reference(batch, spec, reference, rtol=RTOL):
    """Every reference column agrees where the feature is defined (fastjet-contrib gives 0/0 = nan elsewhere)."""
    values, names = compute_features(batch, spec)
    valid, _ = feature_validity(batch, spec)
    for name, expected in reference.items():
        col = names.index(name)
        rows = valid[:, col]
        assert rows.any(), name
        np.testing.assert_allclose(values[rows, col].astype(np.float64), np.asarray(expected)[rows], rtol=rtol, atol=0,
                                   err_msg=name)
        assert (values[~rows, col] == 0).all(), name


# ------------------------------------------------------------------ brute force
def brute_correlators(pt, y, phi):
    """ECFN(N, beta) and ECFG(v, N, beta) of one jet by explicit sums over combinations."""
    z = pt / pt.sum()
    dphi = np.abs(phi[:, None] - phi[None, :])
    dphi = np.minimum(dphi, 2 * np.pi - dphi)
    theta = np.sqrt((y[:, None] - y[None, :]) ** 2 + dphi**2)

    def ecfg(v, n, beta):  # v = -1: all pairs (ECFN)
        total = 0.0
        for combo in itertools.combinations(range(len(z)), n):
            angles = sorted(theta[i, j] for i, j in itertools.combinations(combo, 2))
            angles = angles if v == -1 else angles[:v]
            total += np.prod(z[list(combo)]) * np.prod(np.power(angles, beta))
        return total

    return ecfg


def brute_series(ecfg, spec) -> dict:
    out = {}
    for n in spec.c_series:
        for b in spec.c_betas:
            e = {m: (1.0 if m < 2 else ecfg(-1, m, b)) for m in (n - 1, n, n + 1)}
            out[f"c{n}_b{_fmt(b)}"] = e[n - 1] * e[n + 1] / e[n] ** 2
    for a, b in spec.d2_params:
        out[f"d2_a{_fmt(a)}_b{_fmt(b)}"] = ecfg(-1, 3, a) / ecfg(-1, 2, b) ** (3 * a / b)
    for n in spec.u_series:
        for b in spec.u_betas:
            out[f"u{n}_b{_fmt(b)}"] = ecfg(1, n + 1, b)
    for n in spec.m_series:
        for b in spec.m_betas:
            out[f"m{n}_b{_fmt(b)}"] = ecfg(1, n + 1, b) / (1.0 if n == 1 else ecfg(1, n, b))
    for n in spec.n_series:
        for b in spec.n_betas:
            out[f"n{n}_b{_fmt(b)}"] = ecfg(1, 2, 2 * b) if n == 1 else ecfg(2, n + 1, b) / ecfg(1, n, b) ** 2
    return out


def jet_arrays(batch, i, k=None):
    """pt, rapidity, phi (float64) of jet i's hardest k constituents."""
    m = batch.mask[i]
    pt, eta, phi, e = (a[i, m].astype(np.float64) for a in (batch.pt, batch.eta, batch.phi, batch.energy))
    order = np.argsort(-pt, kind="stable")[:k]
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return pt[order], rapidity(e, px, py, pz)[order], phi[order]


ECF_ONLY = dict(kinematics=False, tau_ratios=())
NO_ECF = dict(c_series=(), d2_params=(), u_series=(), m_series=(), n_series=())


def constituent_set(name):
    """Which constituents a truncated series member uses: 'all', 'k3' (U2, M2, N2) or 'k4' (C3, U3, M3, N3)."""
    index = 0 if name.startswith("d2") else int(name[1])
    return {3: "k4", 2: "all" if name[0] == "c" else "k3"}.get(index, "all")


# ------------------------------------------------------------------------ names
def test_default_names_follow_the_scheme():
    names = FeatureSpec().names()
    assert len(names) == len(set(names)) == 47
    assert names[:5] == ["jet_pt", "jet_eta", "jet_phi", "jet_mass", "n_constituents"]
    for required in ("tau21_b1", "tau32_b1", "c2_b1", "d2_a1_b1", "tau21_b0p5", "u3_b0p5", "n3_b2", "m2_b1", "c3_b2"):
        assert required in names
    assert names[5:8] == ["tau21_b0p5", "tau21_b1", "tau21_b2"]
    assert [n for n in names if n.startswith("d2")] == ["d2_a1_b1", "d2_a1_b2", "d2_a2_b1", "d2_a2_b2"]
    assert [_fmt(x) for x in (0.5, 1.0, 2, 1.5, 0.25, 10)] == ["0p5", "1", "2", "1p5", "0p25", "10"]


def test_efp_names_do_not_depend_on_dmax():
    short = [n for n in FeatureSpec(efp_dmax=3).names() if n.startswith("efp_")]
    longer = [n for n in FeatureSpec(efp_dmax=5).names() if n.startswith("efp_")]
    assert len(short) == 12 and len(longer) == 101
    assert set(short) <= set(longer) and short[:3] == ["efp_d1_0", "efp_d2_0", "efp_d3_0"]
    batch = random_jets(n_jets=3, n_max=12, seed=8)
    v3, n3 = compute_features(batch, FeatureSpec(**ECF_ONLY, **NO_ECF, efp_dmax=3))
    v5, n5 = compute_features(batch, FeatureSpec(**ECF_ONLY, **NO_ECF, efp_dmax=5))
    np.testing.assert_allclose(v3, v5[:, [n5.index(n) for n in n3]], rtol=1e-6)  # same name, same graph


# ------------------------------------------------------------------------- spec
def test_spec_round_trips_and_fingerprints():
    spec = FeatureSpec(tau_betas=(1.0,), d2_params=((1.0, 2.0),), ecf4_max_constituents=None, efp_dmax=2)
    assert FeatureSpec.from_json(spec.to_json()) == spec
    assert FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert hash(FeatureSpec.from_json(spec.to_json())) == hash(spec)
    assert spec.fingerprint() == FeatureSpec.from_json(spec.to_json()).fingerprint()
    assert spec.fingerprint() != FeatureSpec().fingerprint()
    assert FeatureSpec.effnet_s() == FeatureSpec() and FeatureSpec().fingerprint() == FeatureSpec().fingerprint()
    # The 002 preset is exact (no truncation), and there is no separate "exact" preset any more.
    assert FeatureSpec().ecf4_max_constituents is None and FeatureSpec().ecfg3_max_constituents is None
    assert not hasattr(FeatureSpec, "exact")
    truncated = FeatureSpec(ecfg3_max_constituents=40, ecf4_max_constituents=20)
    assert truncated.fingerprint() != FeatureSpec().fingerprint()
    assert FeatureSpec.from_json(truncated.to_json()) == truncated


def test_definition_change_changes_fingerprint(monkeypatch):
    before = FeatureSpec().fingerprint()
    monkeypatch.setitem(spec_module.DEFINITIONS, "truncation", "something else")
    assert FeatureSpec().fingerprint() != before


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(tau_betas=(0.0,)), "tau_betas"),
        (dict(c_series=(4,)), "c_series"),
        (dict(tau_ratios=(1,)), "tau_ratios"),
        (dict(ecf4_max_constituents=3), "ecf4_max_constituents"),
        (dict(tau_axes="Manual_Axes"), "tau_axes"),
        (dict(d2_params=((1.0,),)), "d2_params"),
        (dict(u_betas=(1.0, 1.0)), "duplicate"),
        (dict(efp_dmax=9), "efp_dmax"),
    ],
)
def test_spec_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureSpec(**kwargs)


def test_spec_from_dict_names_unknown_fields():
    with pytest.raises(ValueError, match="unknown field"):
        FeatureSpec.from_dict({"beta": 1.0})
    with pytest.raises(ValueError, match="not valid JSON"):
        FeatureSpec.from_json("{")


# --------------------------------------------------------------- shapes, dtypes
def test_shapes_dtypes_and_kinematics(jets):
    values, names = compute_features(jets)
    assert values.shape == (len(jets), 47) and values.dtype == np.float32
    assert names == FeatureSpec().names() and np.isfinite(values).all()
    np.testing.assert_array_equal(values[:, 0], jets.jet_pt)
    np.testing.assert_array_equal(values[:, 3], jets.jet_mass)
    np.testing.assert_array_equal(values[:, 4], jets.n_constituents)
    none, names = compute_features(jets.select(np.zeros(0, dtype=int)))
    assert none.shape == (0, 47) and none.dtype == np.float32

# ------------------------------------------------ values against references
def test_matches_fastjet_contrib_on_random_jets(jets):
    """Default spec, every constituent (jets of up to 64), against fastjet-contrib on every constituent."""
    spec = FeatureSpec()
    assert jets.n_constituents.max() > 40
    assert_matches_reference(jets, spec, contrib_reference(jets, spec))


def test_matches_fastjet_contrib_other_parameters(jets):
    spec = FeatureSpec(
        tau_axes="WTA_KT_Axes", tau_ratios=(2, 3, 7), jet_radius=1.0, c_betas=(0.5, 1.5), d2_params=((0.5, 1.5),),
        m_series=(1, 2, 3), n_series=(1, 2, 3), u_betas=(0.7,), ecfg3_max_constituents=None, ecf4_max_constituents=12,
    )
    assert_matches_reference(jets, spec, contrib_reference(jets, spec))


@pytest.mark.parametrize("axes", ["OnePass_KT_Axes", "OnePass_WTA_KT_Axes"])
def test_one_pass_axes_are_fastjet_contrib(jets, axes):
    spec = FeatureSpec(tau_axes=axes, tau_ratios=(2, 3), **NO_ECF)
    assert_matches_reference(jets, spec, contrib_reference(jets, spec))


def test_matches_fastjet_contrib_on_pythia_jets(request):
    """Default (exact) spec on 48 Pythia top/QCD jets of ~30 to ~110 constituents."""
    batch = pythia(request)
    spec = FeatureSpec()
    assert batch.n_constituents.max() > 60
    assert_matches_reference(batch, spec, contrib_reference(batch, spec))


def test_default_spec_is_not_truncated(request):
    """On jets of 60+ constituents the default C_3, U_3, M_3, N_3, U_2, M_2, N_2 are fastjet-contrib's on ALL
    constituents, and differ clearly from fastjet-contrib's on the hardest 20 / 40 (so a truncation would fail here)."""
    batch = pythia(request)
    batch = batch.select(np.flatnonzero(batch.n_constituents >= 60)[:8])
    assert len(batch) == 8
    spec = FeatureSpec(kinematics=False, tau_ratios=(), c_series=(3,), d2_params=(), u_series=(2, 3), m_series=(2, 3),
                       n_series=(2, 3))
    values, names = compute_features(batch, spec)
    exact = contrib_reference(batch, spec)
    truncated = contrib_reference(batch, FeatureSpec(**{**spec.to_dict(), "ecfg3_max_constituents": 40,
                                                        "ecf4_max_constituents": 20}))
    for name, expected in exact.items():
        np.testing.assert_allclose(values[:, names.index(name)], expected, rtol=RTOL, err_msg=name)
    for name in ("c3_b2", "u3_b2", "m3_b1", "n3_b1"):
        approx = truncated[f"{name}_k20"]
        assert np.median(np.abs(approx / exact[name] - 1)) > 0.02, name  # the k = 20 approximation is off
        assert np.abs(values[:, names.index(name)] / approx - 1).max() > 0.1, name


def test_truncated_option_is_named_and_matches_contrib_on_the_hardest_k(request):
    """The approximation exists only as an explicit option whose columns say so (``_k{k}``)."""
    spec = FeatureSpec(ecfg3_max_constituents=40, ecf4_max_constituents=20)
    names = spec.names()
    assert len(names) == 47 and "c3_b2_k20" in names and "u2_b1_k40" in names and "n3_b1_k20" in names
    assert not {"c3_b2", "u2_b1", "u3_b0p5", "m2_b1", "n3_b2"} & set(names)
    untouched = [n for n in FeatureSpec().names() if not re.fullmatch(r"([umn][23]|c3)_b.*", n)]
    assert [n for n in names if "_k" not in n] == untouched  # everything else keeps its name and place
    assert [re.sub(r"_k\d+$", "", n) for n in names] == FeatureSpec().names()
    assert spec.min_constituents()["c3_b1_k20"] == 4 and spec.min_constituents()["u2_b1_k40"] == 3
    only4 = FeatureSpec(ecf4_max_constituents=20).names()
    assert "c3_b1_k20" in only4 and "u2_b1" in only4 and "c2_b1" in only4
    batch = pythia(request)
    batch = batch.select(np.argsort(batch.n_constituents)[-6:])  # the six widest (~95-110 constituents)
    assert batch.n_constituents.min() > 40  # both truncations are active
    spec = FeatureSpec(kinematics=False, tau_ratios=(), ecfg3_max_constituents=40, ecf4_max_constituents=20)
    assert_matches_reference(batch, spec, contrib_reference(batch, spec))


def test_tau_of_symmetric_configurations():
    """Two equal-pt particles at y = +-d/2: the kt axis is the midpoint, tau_1 = (d / 2 R0)^beta.
    A third equal-pt particle further away: the first two merge, tau_2 = 2 (d/2)^beta / (3 R0^beta)."""
    d, r0, far = 0.4, 0.8, 0.6
    pt = np.array([[50.0, 50.0, 0.0], [50.0, 50.0, 50.0]])
    eta = np.array([[-d / 2, d / 2, 0.0], [-d / 2, d / 2, 0.0]])
    phi = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, far]])
    batch = JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta))
    spec = FeatureSpec(kinematics=False, tau_ratios=(2, 3), jet_radius=r0, **NO_ECF)
    from jettf.features.nsubjettiness import nsubjettiness

    p4 = batch.four_momenta()[batch.mask]
    taus = nsubjettiness(p4, batch.n_constituents, [1, 2, 3], spec.tau_betas, r0, "KT_Axes")
    for beta in spec.tau_betas:
        assert taus[(1, beta)][0] == pytest.approx((d / 2 / r0) ** beta, rel=1e-6)
        assert taus[(2, beta)][0] == 0.0
        assert taus[(2, beta)][1] == pytest.approx(2 * (d / 2) ** beta / (3 * r0**beta), rel=1e-6)
        # tau_1 of the three: the axis is the E-scheme sum, computed here with numpy.
        axis = p4[2:].sum(axis=0)
        ay, aphi = rapidity(*axis), np.arctan2(axis[2], axis[1])
        dr = np.hypot(eta[1] - ay, phi[1] - aphi)  # massless: rapidity = eta
        assert taus[(1, beta)][1] == pytest.approx((50 * dr**beta).sum() / (150 * r0**beta), rel=1e-6)
    values, names = compute_features(batch, spec)
    assert values[1, names.index("tau21_b1")] == pytest.approx((2 * d / 2 / 3 / r0) / taus[(1, 1.0)][1], rel=1e-6)
    assert values[1, names.index("tau32_b1")] == 0.0


@pytest.mark.parametrize("truncate", [False, True])
def test_correlators_match_brute_force(truncate):
    """ECFN(2), ECFN(3) (C_1, C_2, D_2) and the generalized correlators against explicit sums."""
    batch = random_jets(n_jets=5, n_max=11, seed=3)
    k3, k4 = (7, 5) if truncate else (None, None)
    spec = FeatureSpec(**ECF_ONLY, m_series=(1, 2, 3), n_series=(1, 2, 3), c_betas=(0.5, 1.0, 2.0), u_betas=(0.5, 1.3),
                       ecfg3_max_constituents=k3, ecf4_max_constituents=k4)
    values, names = compute_features(batch, spec)
    assert constituent_set("c3_b1") == "k4" and constituent_set("n2_b1") == "k3" and constituent_set("c2_b1") == "all"
    for i in range(len(batch)):
        expected = {key: brute_series(brute_correlators(*jet_arrays(batch, i, k)), spec)
                    for key, k in (("all", None), ("k3", k3), ("k4", k4))}
        for name in names:
            assert name.endswith(f"_k{k3}") == (truncate and constituent_set(name) == "k3")
            assert name.endswith(f"_k{k4}") == (truncate and constituent_set(name) == "k4")
            want = expected[constituent_set(name) if truncate else "all"][re.sub(r"_k\d+$", "", name)]
            assert values[i, names.index(name)] == pytest.approx(want, rel=RTOL), (i, name)


def test_ecfn3_blocked_product_matches_brute_force():
    """Jets wide enough for the blocked triangle product (w > 32) and the blocked combination tables."""
    batch = random_jets(n_jets=3, n_max=70, seed=5)
    spec = FeatureSpec(**ECF_ONLY, c_series=(2,), d2_params=(), u_series=(2,), m_series=(), n_series=(2,),
                       ecfg3_max_constituents=None)
    values, names = compute_features(batch, spec)
    for i in range(len(batch)):
        pt, y, phi = jet_arrays(batch, i)
        z = pt / pt.sum()
        dphi = np.abs(phi[:, None] - phi[None, :])
        theta = np.hypot(y[:, None] - y[None, :], np.minimum(dphi, 2 * np.pi - dphi))
        combos = np.array(list(itertools.combinations(range(len(z)), 3)))
        angles = np.stack([theta[combos[:, a], combos[:, b]] for a, b in ((0, 1), (0, 2), (1, 2))])
        weight = z[combos].prod(axis=1)
        for beta in (1.0, 2.0):
            e2 = (np.triu(theta**beta, 1) * np.outer(z, z)).sum()
            e3 = (weight * angles.prod(axis=0) ** beta).sum()
            assert values[i, names.index(f"c2_b{_fmt(beta)}")] == pytest.approx(e3 / e2**2, rel=RTOL)
        srt = np.sort(angles, axis=0)
        u2 = (weight * srt[0]).sum()
        n2 = (weight * srt[0] * srt[1]).sum() / ((np.triu(theta, 1) * np.outer(z, z)).sum()) ** 2
        assert values[i, names.index("u2_b1")] == pytest.approx(u2, rel=RTOL)
        assert values[i, names.index("n2_b1")] == pytest.approx(n2, rel=RTOL)


def test_efps_match_energyflow():
    import energyflow

    batch = random_jets(n_jets=6, n_max=25, seed=7)  # phi spans [-pi, pi): wrapping matters
    spec = FeatureSpec(**ECF_ONLY, **NO_ECF, efp_dmax=4, efp_beta=0.5)
    values, names = compute_features(batch, spec)
    efpset = energyflow.EFPSet(("d<=", 4), ("d>", 0), measure="hadr", beta=0.5, normed=True, coords="ptyphim")
    assert len(names) == len(efpset.specs) == 35
    for i in range(len(batch)):
        pt, y, phi = jet_arrays(batch, i)
        expected = efpset.compute(np.stack([pt, y, phi], axis=1))
        np.testing.assert_allclose(values[i], expected, rtol=RTOL)


# --------------------------------------------------------------- edge cases
def test_degenerate_jets_are_zero_flagged_and_counted():
    rng = np.random.default_rng(2)
    counts = np.array([0, 1, 2, 3, 4, 8])
    pt = rng.uniform(5, 50, (len(counts), 8)) * (np.arange(8)[None] < counts[:, None])
    eta, phi = rng.normal(0, 0.3, (2, len(counts), 8))
    batch = JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta))
    spec = FeatureSpec(efp_dmax=2)
    with pytest.warns(DegenerateJetWarning, match="5 of 6 jets") as record:
        values, names = compute_features(batch, spec)
    assert "1 with n < 1, 2 with n < 2, 3 with n < 3" in str(record[0].message)
    valid, valid_names = feature_validity(batch, spec)
    assert valid_names == names and valid.shape == values.shape
    assert np.isfinite(values).all()
    assert (values[~valid] == 0).all()
    needs = spec.min_constituents()
    assert needs["tau21_b1"] == 3 and needs["tau65_b2"] == 7 and needs["c3_b1"] == 4 and needs["u3_b1"] == 4
    assert needs["d2_a1_b1"] == 3 and needs["m2_b1"] == 3 and needs["n3_b1"] == 4 and needs["jet_pt"] == 0
    np.testing.assert_array_equal(valid[:, names.index("tau21_b1")], counts >= 3)
    np.testing.assert_array_equal(valid[:, names.index("c1_b1")], counts >= 2)
    assert (values[0, 5:] == 0).all()  # no constituents: only the stored jet kinematics
    with pytest.warns(DegenerateJetWarning, match="1 of 1 jets"):
        empty, _ = compute_features(batch.select([0]), spec)
    np.testing.assert_array_equal(empty, values[:1])
    assert values[2, names.index("c1_b1")] > 0 and values[3, names.index("c2_b1")] > 0
    assert values[4, names.index("n3_b1")] > 0 and values[4, names.index("tau32_b1")] > 0


def test_no_warning_for_healthy_jets(jets):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateJetWarning)
        compute_features(jets.select(np.flatnonzero(jets.n_constituents >= 7)))


def test_deterministic_and_independent_of_order_and_chunking(jets, monkeypatch):
    values, _ = compute_features(jets)
    again, _ = compute_features(jets)
    np.testing.assert_array_equal(values, again)
    # Shuffle constituent slots (padding included) and jets.
    rng = np.random.default_rng(9)
    slots = rng.permutation(jets.max_constituents)
    shuffled = JetBatch.from_ptetaphie(jets.pt[:, slots], jets.eta[:, slots], jets.phi[:, slots], jets.energy[:, slots],
                                       mask=jets.mask[:, slots], jet_pt=jets.jet_pt, jet_eta=jets.jet_eta,
                                       jet_phi=jets.jet_phi, jet_mass=jets.jet_mass)
    rows = rng.permutation(len(jets))
    permuted, _ = compute_features(shuffled.select(rows))
    np.testing.assert_allclose(permuted, values[rows], rtol=1e-6)
    # Tiny blocks and groups exercise the batching paths.
    monkeypatch.setattr(compute_module, "_JET_BLOCK", 5)
    monkeypatch.setattr(compute_module, "_GROUP_ELEMENTS", 3000)
    chunked, _ = compute_features(jets)
    np.testing.assert_allclose(chunked, values, rtol=1e-6)


def test_truncation_changes_nothing_for_small_jets():
    batch = random_jets(n_jets=6, n_max=14, seed=4)
    exact, names = compute_features(batch, FeatureSpec())
    truncated, truncated_names = compute_features(batch, FeatureSpec(ecfg3_max_constituents=14, ecf4_max_constituents=14))
    np.testing.assert_array_equal(exact, truncated)
    assert [re.sub(r"_k14$", "", n) for n in truncated_names] == names and "c3_b2_k14" in truncated_names


# ------------------------------------------------------------------ physics
def test_top_jets_have_smaller_tau32_than_qcd(request):
    batch = pythia(request)
    values, names = compute_features(batch)
    top = list(batch.class_names).index("top")
    tau32 = values[:, names.index("tau32_b1")]
    assert tau32[batch.labels == top].mean() < tau32[batch.labels != top].mean()
