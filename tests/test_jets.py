"""JetBatch, the in-memory form of jets (jettf.jets).

Expected values are computed here with plain numpy from the defining formulas.
"""

import numpy as np
import pytest

from jettf.jets import JetBatch, delta_phi, wrap_phi


def massive_constituents(n_jets=6, width=9, seed=3):
    """Constituent (pt, eta, phi, mass, mask) with 1..width real entries per jet and phi near the wrap."""
    rng = np.random.default_rng(seed)
    count = rng.integers(1, width + 1, n_jets)
    mask = np.arange(width)[None, :] < count[:, None]
    pt = rng.exponential(20.0, mask.shape) + 1.0
    eta = rng.normal(0.0, 1.0, mask.shape)
    phi = wrap_phi(np.pi + rng.normal(0.0, 0.3, mask.shape))  # jets straddle phi = +-pi
    mass = rng.choice([0.0, 0.13957, 0.49368, 0.93827], mask.shape)
    return pt * mask, eta * mask, phi * mask, mass * mask, mask


def cartesian(pt, eta, phi, mass):
    """(E, px, py, pz) from (pt, eta, phi, m)."""
    pz = pt * np.sinh(eta)
    return np.sqrt(pt**2 * np.cosh(eta) ** 2 + mass**2), pt * np.cos(phi), pt * np.sin(phi), pz


def jet_kinematics(e, px, py, pz):
    """(pt, eta, phi, mass) of the summed four-momentum, per jet."""
    e, px, py, pz = (a.sum(axis=1) for a in (e, px, py, pz))
    pt = np.hypot(px, py)
    return pt, np.arcsinh(pz / pt), np.arctan2(py, px), np.sqrt(e**2 - px**2 - py**2 - pz**2)


def small_batch(labels=(0, 1, 0), class_names=("qcd", "top")):
    pt = np.array([[5.0, 0.0, 9.0], [1.0, 2.0, 3.0], [0.0, 0.0, 4.0]])
    ones = np.ones_like(pt)
    return JetBatch.from_ptetaphie(pt, ones * 0.1, ones * 0.2, pt * np.cosh(0.1), labels=labels,
                                   class_names=class_names, pid=np.full(pt.shape, 211), charge=ones)


# ------------------------------------------------------------- constructors
def test_from_cartesian_and_from_ptetaphie_agree():
    pt, eta, phi, mass, mask = massive_constituents()
    e, px, py, pz = cartesian(pt, eta, phi, mass)
    a = JetBatch.from_cartesian(e, px, py, pz, mask=mask)
    b = JetBatch.from_ptetaphie(pt, eta, phi, e, mask=mask)
    for name in ("pt", "eta", "phi", "energy", "jet_pt", "jet_eta"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-5, err_msg=name)
    # from_ptetaphie sums float32 energies: m^2 = E^2 - p^2 loses ~1e-4 GeV for a lone pion
    np.testing.assert_allclose(a.jet_mass, b.jet_mass, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(delta_phi(a.jet_phi, b.jet_phi), 0, atol=1e-5)
    np.testing.assert_array_equal(a.mask, mask)
    np.testing.assert_allclose(a.pt, pt.astype(np.float32), rtol=1e-6)


def test_jet_kinematics_are_the_summed_four_momentum():
    pt, eta, phi, mass, mask = massive_constituents()
    e, px, py, pz = cartesian(pt, eta, phi, mass)
    batch = JetBatch.from_cartesian(e, px, py, pz)
    jet_pt, jet_eta, jet_phi, jet_mass = jet_kinematics(e, px, py, pz)
    np.testing.assert_allclose(batch.jet_pt, jet_pt, rtol=1e-6)
    np.testing.assert_allclose(batch.jet_eta, jet_eta, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(delta_phi(batch.jet_phi, jet_phi), 0, atol=1e-6)
    np.testing.assert_allclose(batch.jet_mass, jet_mass, rtol=1e-4)
    np.testing.assert_allclose(batch.four_momenta(), np.stack([e, px, py, pz], axis=-1), rtol=1e-5, atol=1e-4)


def test_stored_jet_kinematics_are_kept():
    pt, eta, phi, mass, mask = massive_constituents()
    batch = JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta), jet_pt=np.full(len(pt), 500.0),
                                    jet_mass=np.arange(len(pt)), jet_phi=np.full(len(pt), 4.0))
    np.testing.assert_array_equal(batch.jet_pt, 500.0)
    np.testing.assert_array_equal(batch.jet_mass, np.arange(len(pt)))
    np.testing.assert_allclose(batch.jet_phi, 4.0 - 2 * np.pi, rtol=1e-6)  # wrapped
    assert batch.jet_pt.dtype == np.float32


def test_from_relative_round_trips_relative():
    pt, eta, phi, mass, mask = massive_constituents()
    batch = JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta), mask=mask)
    etarel, phirel, ptrel = batch.relative()
    np.testing.assert_allclose(ptrel.sum(axis=1), batch.pt.sum(axis=1) / batch.jet_pt, rtol=1e-5)
    assert np.all(np.abs(phirel) < np.pi)
    back = JetBatch.from_relative(etarel, phirel, ptrel, batch.jet_pt, batch.jet_eta, batch.jet_phi, batch.jet_mass)
    np.testing.assert_array_equal(back.mask, mask)
    np.testing.assert_allclose(back.pt, batch.pt, rtol=1e-5)
    np.testing.assert_allclose(back.eta, batch.eta, atol=1e-5)
    np.testing.assert_allclose(delta_phi(back.phi, batch.phi), 0, atol=1e-5)
    np.testing.assert_allclose(back.energy, batch.energy, rtol=1e-5)
    np.testing.assert_array_equal(back.jet_mass, batch.jet_mass)


def test_from_relative_defaults_jet_phi_to_zero_and_computes_missing_mass():
    ptrel = np.array([[0.6, 0.4, 0.0]])
    batch = JetBatch.from_relative(np.array([[0.1, -0.1, 0.0]]), np.array([[0.05, -0.05, 0.0]]), ptrel,
                                   jet_pt=[100.0], jet_eta=[0.0])
    assert batch.jet_phi.tolist() == [0.0]
    e, px, py, pz = cartesian(ptrel * 100, np.array([[0.1, -0.1, 0]]), np.array([[0.05, -0.05, 0]]), 0.0)
    np.testing.assert_allclose(batch.jet_mass, jet_kinematics(e * (ptrel > 0), px, py, pz)[3], rtol=1e-4)
    assert batch.mask.tolist() == [[True, True, False]]


def test_padding_is_zeroed_and_mask_defaults_to_positive_pt():
    pt = np.array([[3.0, 0.0], [2.0, 1.0]])
    batch = JetBatch.from_ptetaphie(pt, np.full_like(pt, 7.0), np.full_like(pt, 1.0), np.full_like(pt, 9.0),
                                    pid=np.full(pt.shape, 22))
    assert batch.mask.tolist() == [[True, False], [True, True]]
    assert batch.eta[0, 1] == 0 and batch.energy[0, 1] == 0 and batch.pid[0, 1] == 0
    assert batch.n_constituents.tolist() == [1, 2] and batch.n_constituents.dtype == np.int32
    assert np.all(batch.four_momenta()[0, 1] == 0)
    assert batch.pid.dtype == np.int32 and batch.pt.dtype == np.float32


# ----------------------------------------------------------------- phi wrap
def test_wrap_phi_and_delta_phi():
    phi = np.array([-np.pi, np.pi, 3 * np.pi / 2, -3 * np.pi / 2, 7.0, 0.0])
    wrapped = wrap_phi(phi)
    assert np.all((wrapped >= -np.pi) & (wrapped < np.pi))
    np.testing.assert_allclose(wrapped, [-np.pi, -np.pi, -np.pi / 2, np.pi / 2, 7.0 - 2 * np.pi, 0.0], atol=1e-12)
    np.testing.assert_allclose(delta_phi(3.1, -3.1), 6.2 - 2 * np.pi, atol=1e-12)  # across the wrap
    np.testing.assert_allclose(delta_phi(-3.1, 3.1), 2 * np.pi - 6.2, atol=1e-12)


def test_constituent_phi_is_wrapped_on_construction():
    pt = np.array([[1.0, 1.0]])
    batch = JetBatch.from_ptetaphie(pt, pt * 0, np.array([[4.0, -4.0]]), pt)
    np.testing.assert_allclose(batch.phi, [[4.0 - 2 * np.pi, 2 * np.pi - 4.0]], rtol=1e-6)


# --------------------------------------------------------------- operations
def test_sort_by_pt_orders_descending_with_padding_last():
    batch = small_batch().sort_by_pt()
    assert batch.pt.tolist() == [[9.0, 5.0, 0.0], [3.0, 2.0, 1.0], [4.0, 0.0, 0.0]]
    assert batch.mask.tolist() == [[True, True, False], [True, True, True], [True, False, False]]
    assert batch.pid.tolist() == [[211, 211, 0], [211, 211, 211], [211, 0, 0]]  # pid follows its constituent


def test_pad_to_truncates_and_extends():
    batch = small_batch().sort_by_pt()
    assert batch.pad_to(1).pt.tolist() == [[9.0], [3.0], [4.0]]
    wide = batch.pad_to(5)
    assert wide.max_constituents == 5 and not wide.mask[:, 3:].any() and wide.pid[:, 3:].sum() == 0
    np.testing.assert_array_equal(wide.jet_pt, batch.jet_pt)  # jet kinematics describe the whole jet
    with pytest.raises(ValueError, match="m must be >= 0"):
        batch.pad_to(-1)


def test_select_by_indices_slices_masks_and_nothing():
    batch = small_batch()
    assert batch.select([2, 0]).pt[:, 2].tolist() == [4.0, 9.0]
    assert batch.select(slice(1, None)).labels.tolist() == [1, 0]
    assert len(batch.select(np.array([True, False, True]))) == 2
    assert batch[1].pt.tolist() == [[1.0, 2.0, 3.0]]
    empty = batch.select([])
    assert len(empty) == 0 and empty.max_constituents == 3 and empty.class_names == ("qcd", "top")
    with pytest.raises(ValueError, match=r"boolean index has shape \(2,\), expected \(3,\)"):
        batch.select(np.array([True, False]))


def test_with_labels_broadcasts():
    relabelled = small_batch().with_labels(1, ("a", "b"))
    assert relabelled.labels.tolist() == [1, 1, 1] and relabelled.class_names == ("a", "b")


def test_concatenate_pads_to_the_widest_batch():
    a = small_batch()
    b = a.pad_to(5).select([0])
    joined = JetBatch.concatenate([a, b])
    assert len(joined) == 4 and joined.max_constituents == 5
    np.testing.assert_array_equal(joined.pt[:3, :3], a.pt)
    assert not joined.mask[:3, 3:].any()
    assert joined.labels.tolist() == [0, 1, 0, 0]


def test_concatenate_errors():
    a = small_batch()
    with pytest.raises(ValueError, match="no batches given"):
        JetBatch.concatenate([])
    with pytest.raises(ValueError, match="class names differ"):
        JetBatch.concatenate([a, a.with_labels(0, ("x", "y"))])
    no_pid = JetBatch.from_ptetaphie(a.pt, a.eta, a.phi, a.energy, labels=a.labels, class_names=a.class_names)
    with pytest.raises(ValueError, match="'pid' is set in some batches but not in others"):
        JetBatch.concatenate([a, no_pid])


def test_construction_errors():
    with pytest.raises(ValueError, match=r"'pt' must be 2-D \[N, M\], got shape \(3,\)"):
        JetBatch.from_ptetaphie(np.ones(3), np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"'mask' has shape \(2, 2\), expected \(2, 3\)"):
        JetBatch.from_ptetaphie(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)),
                                mask=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match=r"labels span \[0, 2\] but there are 2 class names"):
        small_batch(labels=(0, 2, 1))
    batch = small_batch()
    with pytest.raises(ValueError, match=r"'eta' has shape \(3, 2\), expected \(3, 3\) like 'pt'"):
        JetBatch(**{**{f: getattr(batch, f) for f in batch.__dataclass_fields__}, "eta": batch.eta[:, :2]})
    with pytest.raises(ValueError, match=r"'jet_pt' has shape \(2,\), expected \(3,\)"):
        JetBatch(**{**{f: getattr(batch, f) for f in batch.__dataclass_fields__}, "jet_pt": batch.jet_pt[:2]})


# -------------------------------------------------------------- subdetector tags
def test_subdetector_tags_follow_their_constituents():
    from jettf.jets import ECAL, GEN_EM, GEN_HAD, HCAL, TRACK, generator_split

    tags = np.array([[TRACK, ECAL, HCAL], [HCAL, TRACK, TRACK], [ECAL, ECAL, TRACK]])
    a = small_batch()
    batch = JetBatch.from_ptetaphie(a.pt, a.eta, a.phi, a.energy, labels=a.labels, class_names=a.class_names,
                                    pid=a.pid, charge=a.charge, subdetector=tags)
    assert batch.subdetector.dtype == np.int8
    assert batch.subdetector.tolist() == [[TRACK, 0, HCAL], [HCAL, TRACK, TRACK], [0, 0, TRACK]]  # padding is 0
    assert batch.sort_by_pt().subdetector.tolist() == [[HCAL, TRACK, 0], [TRACK, TRACK, HCAL], [TRACK, 0, 0]]
    assert batch.pad_to(2).subdetector.shape == (3, 2) and not batch.pad_to(5).subdetector[:, 3:].any()
    assert batch.select([2]).subdetector.tolist() == [[0, 0, TRACK]]
    joined = JetBatch.concatenate([batch, batch.pad_to(4)])
    assert joined.subdetector.shape == (6, 4)
    with pytest.raises(ValueError, match="'subdetector' is set in some batches but not in others"):
        JetBatch.concatenate([batch, a])
    with pytest.raises(ValueError, match=r"'subdetector' has shape \(3, 2\), expected \(3, 3\) like 'pt'"):
        JetBatch(**{**{f: getattr(batch, f) for f in batch.__dataclass_fields__}, "subdetector": tags[:, :2]})
    assert generator_split([22, -11, 211, 130, 2112, 13, 14, 0]).tolist() == [GEN_EM, GEN_EM] + [GEN_HAD] * 3 + [0] * 3
    split = a.with_generator_split()
    assert split.subdetector.tolist() == [[GEN_HAD, 0, GEN_HAD], [GEN_HAD] * 3, [0, 0, GEN_HAD]]
    with pytest.raises(ValueError, match="'pid' is None"):
        JetBatch.from_ptetaphie(a.pt, a.eta, a.phi, a.energy).with_generator_split()
