"""004's calorimeter studies (issue 15): features on hand-made images, candidate images from cells, the lepton
files, the generator on a few Pythia events, the two-tower CNN / dense / origin-centred Deep Sets, the study's
statistics and a tiny end-to-end run."""

from __future__ import annotations

import helpers
import numpy as np
import pytest

from jettf.calo.cards import ELECTRONS, ISOLATION_RADII, MUONS
from jettf.detector import get_card
from jettf.detector.calorimeter import Cells, cell_center
from jettf.features.calorimeter import candidate_mass, electron_features, isolation_cones

ATLAS = get_card("atlas")
DETA, DPHI = ATLAS.ecal.deta, ATLAS.ecal.dphi
C = 15  # centre pixel of the 31 x 31 ECAL image


def ecal_image(entries, n_eta=31, n_phi=31):
    """``[1, 31, 31]`` image with ``{(row offset, column offset): value}`` around the centre."""
    image = np.zeros((1, n_eta, n_phi))
    for (a, b), v in entries.items():
        image[0, n_eta // 2 + a, n_phi // 2 + b] += v
    return image


# ------------------------------------------------------------------------------------------------ features
def test_r_had_is_hcal_over_ecal_transverse_energy():
    e = ecal_image({(0, 0): 8.0, (5, -3): 2.0})
    h = np.zeros((1, 8, 8))
    h[0, 2, 5] = 1.5
    h[0, 7, 0] = 1.0
    assert electron_features(e, e, h)[0, 0] == pytest.approx(2.5 / 10.0)


def test_w_eta2_uses_the_3x5_window_in_eta_units():
    # Two equal cells one row above and below the centre: <eta> = 0, <eta^2> = deta^2. The cell two rows away
    # and the one four columns away lie outside the 3 x 5 window.
    e = ecal_image({(0, 0): 5.0, (-1, 0): 2.0, (1, 2): 2.0, (2, 0): 50.0, (0, 3): 50.0})
    w = electron_features(e, e, np.zeros((1, 8, 8)))[0, 1]
    mean2 = (2 * DETA**2 + 2 * DETA**2) / 9.0  # weights 5 (eta 0), 2 (eta -deta), 2 (eta +deta)
    assert w == pytest.approx(np.sqrt(mean2 - 0.0))


def test_r_phi_and_r_eta_are_window_ratios():
    e = ecal_image({(0, 0): 4.0, (1, 1): 2.0, (0, 3): 1.0, (-1, -2): 1.0, (3, 0): 1.5, (-2, 3): 0.5, (0, 4): 9.0})
    r_phi, r_eta = electron_features(e, e, np.zeros((1, 8, 8)))[0, 2:4]
    e33, e37, e77 = 6.0, 8.0, 10.0  # (0, 4) is outside every window
    assert (r_phi, r_eta) == (pytest.approx(e33 / e37), pytest.approx(e37 / e77))


def test_sigma_eta_eta_log_weights_in_cell_units():
    # Weights |ln E|: e^2 -> 2 at row -2, e -> 1 at row +1, 1 GeV -> 0 at the centre. eta_bar = (-4 + 1) / 3
    # = -1, sigma^2 = (2 * 1 + 1 * 4) / 3 = 2. A cell at row 3 is outside the 5 x 5 window.
    e = ecal_image({(0, 0): 1.0, (-2, 1): np.e**2, (1, -2): np.e, (3, 0): 100.0})
    assert electron_features(e, e, np.zeros((1, 8, 8)))[0, 4] == pytest.approx(np.sqrt(2.0))
    # A lone 1 GeV cell: every weight is 0 -> 0, not nan.
    assert electron_features(ecal_image({(0, 0): 1.0}), ecal_image({(0, 0): 1.0}), np.zeros((1, 8, 8)))[0, 4] == 0


def test_isolation_sums_ecal_energy_within_the_cones():
    # Rows are eta (0.025), columns phi (pi / 126). (10, 0): dR 0.25; (14, 0): 0.35; (0, 13): 0.324;
    # (12, 12): 0.424 (outside both).
    e = ecal_image({(0, 0): 10.0, (10, 0): 1.0, (14, 0): 2.0, (0, 13): 4.0, (12, 12): 8.0})
    iso3, iso4 = electron_features(e, e * 0.5, np.zeros((1, 8, 8)))[0, 5:7]  # E (not E_T) is summed
    assert (iso3, iso4) == (pytest.approx(11.0), pytest.approx(17.0))


def test_candidate_mass_of_two_deposits():
    e = ecal_image({(0, 0): 5.0})
    h = np.zeros((1, 8, 8))
    h[0, 4, 4] = 3.0  # HCAL pixel centre at (+0.5 x 0.1, +0.5 x pi/31) from the image centre
    offset = np.array([[0.02, -0.01]])
    d_eta, d_phi = 0.05 + 0.02, np.pi / 62 - 0.01
    expected = np.sqrt(2 * 5.0 * 3.0 * (np.cosh(d_eta) - np.cos(d_phi)))
    assert candidate_mass(e, h, offset)[0] == pytest.approx(expected, rel=1e-9)
    assert candidate_mass(e, np.zeros((1, 8, 8)))[0] == pytest.approx(0.0, abs=1e-6)  # one massless deposit


def test_isolation_cones_match_a_direct_sum():
    rng = np.random.default_rng(3)
    image = rng.exponential(1.0, (5, 32, 32)) * (rng.random((5, 32, 32)) < 0.3)
    pt = rng.uniform(10, 15, 5)
    got = isolation_cones(image, pt)
    centres = -0.45 + (np.arange(32) + 0.5) * (0.9 / 32)
    dr = np.hypot(centres[:, None], centres[None, :])
    for k, r in enumerate(ISOLATION_RADII):
        assert np.allclose(got[:, k], (image * (dr < r)).sum(axis=(1, 2)) / pt)
    assert len(ISOLATION_RADII) == 18 and ISOLATION_RADII[0] == 0.025 and ISOLATION_RADII[-1] == 0.45
    with pytest.raises(ValueError, match="muon_pt must be > 0"):
        isolation_cones(image, np.zeros(5))


# ------------------------------------------------------------------------------------------------ images
def make_cells(calo, event, ieta, iphi, energy):
    event, ieta, iphi = (np.asarray(a, np.int64) for a in (event, ieta, iphi))
    eta, phi = cell_center(calo, ieta, iphi)
    return Cells(np.zeros(len(event), np.int64), event, ieta, iphi, np.asarray(energy, np.float64), eta, phi)


def test_electron_images_centre_on_the_hottest_cell_near_the_track_and_keep_native_cells():
    from jettf.calo.images import electron_images

    ecal, hcal = ATLAS.ecal, ATLAS.hcal
    # Event 0: track in cell (40, 3); hottest E_T within 9 x 9 is (42, 1) (a hotter cell at (46, 3) is 6 away);
    # phi wraps (cell 251 is next to 0). Event 1: no cell near its track.
    track_eta, track_phi = cell_center(ecal, np.array([40, -20]), np.array([3, 100]))
    cells = make_cells(ecal, [0, 0, 0, 0, 1], [42, 46, 40, 41, -60], [1, 3, 250, 1, 100], [20.0, 50.0, 3.0, 1.0, 9.0])
    towers = make_cells(hcal, [0, 0], [10, 30], [0, 20], [4.0, 7.0])
    out = electron_images(cells, towers, 2, track_eta, track_phi, ATLAS, ELECTRONS)
    assert out.found.tolist() == [True, False]
    assert out.ecal_e.shape == (2, 31, 31) and out.hcal_e.shape == (2, 8, 8)
    img = out.ecal_e[0]
    assert img[C, C] == 20.0 and img[C + 4, C + 2] == 50.0 and img[C - 2, C - 3] == 3.0 and img[C - 1, C] == 1.0
    assert img.sum() == pytest.approx(74.0)
    et = out.ecal_et[0]
    assert et[C, C] == pytest.approx(20.0 / np.cosh((42 + 0.5) * ecal.deta))
    eta_c, phi_c = cell_center(ecal, 42, 1)
    assert (out.eta[0], out.phi[0]) == (pytest.approx(eta_c), pytest.approx(phi_c))
    # The HCAL block: 8 towers whose centre is nearest the image centre; tower (10, 0) holds the centre.
    assert out.hcal_e[0].sum() == 4.0 and out.hcal_e[0, 3:5, 3:5].sum() == 4.0
    assert np.all(np.abs(out.hcal_offset[0]) <= [hcal.deta / 2, hcal.dphi / 2 + 1e-12])


def test_cone_image_shares_cell_area_and_cuts_the_cone():
    from jettf.calo.images import cone_image

    ecal, hcal = ATLAS.ecal, ATLAS.hcal
    # One HCAL tower at the centre (0.1 x 0.101 over 0.028-wide pixels) and one ECAL cell far outside the cone.
    towers = make_cells(hcal, [0], [0], [31], [10.0])
    eta_c, phi_c = cell_center(hcal, np.array([0]), np.array([31]))
    far = make_cells(ecal, [0], [20], [31 * 4], [5.0])
    image = cone_image((towers, far), (hcal, ecal), 1, eta_c, phi_c, MUONS.cone, MUONS.pixels)[0]
    assert image.sum() == pytest.approx(10.0 / np.cosh(eta_c[0]))  # all inside delta-R < 0.45
    # Reference: supersample the tower's area.
    fine = np.linspace(-0.5, 0.5, 401)[:-1] + 1.0 / 800
    pts_eta = (fine[:, None] * hcal.deta + 0 * fine[None, :]).ravel()
    pts_phi = (0 * fine[:, None] + fine[None, :] * hcal.dphi).ravel()
    width = 2 * MUONS.cone / MUONS.pixels
    ref = np.zeros((32, 32))
    np.add.at(ref, (np.floor((pts_eta + 0.45) / width).astype(int), np.floor((pts_phi + 0.45) / width).astype(int)),
              10.0 / np.cosh(eta_c[0]) / pts_eta.size)
    assert np.allclose(image, ref, atol=1e-2 * ref.max())  # supersampling resolves edges to ~0.5%
    centres = -0.45 + (np.arange(32) + 0.5) * width
    outside = np.hypot(centres[:, None], centres[None, :]) >= 0.45
    ring = make_cells(ecal, [0] * 4, [17, -18, 0, 0], [31 * 4, 31 * 4, 31 * 4 + 17, 31 * 4 - 18], [1.0] * 4)
    image = cone_image((ring,), (ecal,), 1, np.zeros(1), cell_center(ecal, 0, 31 * 4)[1] * np.ones(1), 0.45, 32)[0]
    assert image[outside].sum() == 0 and image.sum() > 0


# ------------------------------------------------------------------------------------------------ files
def electron_arrays(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return {"ecal_et": rng.exponential(1.0, (n, 31, 31)), "ecal_e": rng.exponential(1.0, (n, 31, 31)),
            "hcal_et": rng.exponential(1.0, (n, 8, 8)), "hcal_e": rng.exponential(1.0, (n, 8, 8)),
            "hcal_offset": rng.normal(0, 0.02, (n, 2)), "y": np.arange(n) % 2, "pt": rng.uniform(10, 30, n),
            "eta": rng.uniform(-2, 2, n), "weight": np.ones(n)}


def test_lepton_files_round_trip_stream_and_name_bad_values(tmp_path):
    import h5py

    from jettf.io import FileFormatError, generated_settings
    from jettf.io.leptons import read_electrons, read_muons, write_electrons, write_muons

    arrays = electron_arrays(7)
    path = write_electrons(arrays, tmp_path / "electrons.h5", generated={"sample": "electrons"})
    whole = read_electrons(tmp_path)
    assert len(whole) == 7 and whole["ecal_et"].dtype == np.float32 and whole["y"].dtype == np.int8
    assert np.allclose(whole["ecal_et"], arrays["ecal_et"].astype(np.float32))
    chunks = list(read_electrons(path, chunk_size=3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert np.array_equal(np.concatenate([c["hcal_e"] for c in chunks]), whole["hcal_e"])
    assert generated_settings(path) == {"sample": "electrons"}
    write_electrons(arrays, tmp_path / "again.h5", generated={"sample": "electrons"})
    assert path.read_bytes() == (tmp_path / "again.h5").read_bytes()  # no timestamps

    muons = {"image_et": np.ones((4, 32, 32)), "cells": np.ones((4, 7, 5)), "y": [0, 1, 0, 1], "pt": [10, 11, 12, 13],
             "eta": [0] * 4, "weight": [1.0] * 4}
    assert len(read_muons(write_muons(muons, tmp_path / "muons.h5"))) == 4
    with h5py.File(tmp_path / "muons.h5", "r+") as f:
        del f["cells"]  # a file from before the cells were stored
    with pytest.raises(FileFormatError, match=r"\['cells'\] missing.*'cells' \[N, M, 5\] \(cells within delta-R < 0.45"):
        read_muons(tmp_path / "muons.h5")

    with h5py.File(path, "r+") as f:
        f["ecal_et"][4, 2, 3] = np.nan
    with pytest.raises(FileFormatError, match=r"electrons.h5: 'ecal_et'\[4, 2, 3\] = .*nan.* at row 4; expected fin"):
        read_electrons(path)
    assert len(next(iter(read_electrons(path, chunk_size=4)))) == 4  # the bad row is in the second chunk
    with h5py.File(path, "r+") as f:
        del f["hcal_e"]
    with pytest.raises(FileFormatError, match=r"dataset\(s\) \['hcal_e'\] missing.*'hcal_e' \[N, 8, 8\]"):
        read_electrons(path)
    bad = dict(muons, y=[0, 2, 0, 1])
    with pytest.raises(ValueError, match=r"'y'\[1\] = 2 at row 1; expected 0 or 1"):
        write_muons(bad, tmp_path / "bad.h5")
    with pytest.raises(ValueError, match=r"'image_et' has shape \(4, 31, 31\); expected \(4, 32, 32\)"):
        write_muons(dict(muons, image_et=np.ones((4, 31, 31))), tmp_path / "bad.h5")
    with pytest.raises(ValueError, match=r"'cells' has shape \(4, 7, 4\); expected \(4, M, 5\)"):
        write_muons(dict(muons, cells=np.ones((4, 7, 4))), tmp_path / "bad.h5")
    with pytest.raises(FileNotFoundError, match="muons.h5: no such file"):
        read_muons(tmp_path / "nothing" / "muons.h5")


def test_pt_weights_match_the_target_spectrum():
    from jettf.generate.leptons import pt_weights

    rng = np.random.default_rng(0)
    source, target = rng.exponential(5.0, 20000) + 10, rng.uniform(10, 30, 20000)
    edges = np.arange(10.0, 41.0, 1.0)
    w = pt_weights(source, target, edges)
    assert w.mean() == pytest.approx(1.0)
    h_w = np.histogram(source, edges, weights=w)[0] / w.sum()
    h_t = np.histogram(target, edges)[0] / len(target)
    assert np.allclose(h_w[:15], h_t[:15], atol=0.01)


def test_heavy_flavour_hadrons():
    from jettf.generate.leptons import is_heavy_flavour_hadron

    assert is_heavy_flavour_hadron([511, 521, 531, 5122, 411, 421, 4122, 443, 553]).all()
    assert not is_heavy_flavour_hadron([211, 321, 111, 2212, 3122, 15, 13, 32, 5, 21]).any()


# ------------------------------------------------------------------------------------------------ generator
def test_electron_sample_is_seeded_resumable_and_selected(tmp_path):
    from jettf.generate.leptons import generate_lepton_sample
    from jettf.io import generated_settings
    from jettf.io.leptons import read_electrons

    [path] = generate_lepton_sample("electrons", 4, tmp_path / "a", seed=3, shard=2, progress=False)
    sample = read_electrons(path)
    assert len(sample) == 8 and sorted(sample.labels.tolist()) == [0] * 4 + [1] * 4
    assert np.all(sample["pt"] > ELECTRONS.track_pt_min) and np.all(np.abs(sample["eta"]) < ELECTRONS.abs_eta_max)
    centre = sample["ecal_et"][:, C, C]
    assert np.all(centre > 0) and np.all(centre >= sample["ecal_et"][:, C - 4:C + 5, C - 4:C + 5].max(axis=(1, 2)))
    assert np.all(sample["hcal_et"].sum(axis=(1, 2)) < ELECTRONS.max_r_had * sample["ecal_et"].sum(axis=(1, 2)))
    assert np.allclose(sample["weight"][sample.labels == 1], 1.0)
    assert generated_settings(path)["sample"] == "electrons"
    first = path.read_bytes()
    path.unlink()  # resume from the kept shards
    generate_lepton_sample("electrons", 4, tmp_path / "a", seed=3, shard=2, progress=False)
    assert path.read_bytes() == first
    [other] = generate_lepton_sample("electrons", 4, tmp_path / "b", seed=3, shard=2, workers=2, progress=False)
    assert other.read_bytes() == first





def test_electron_background_is_electrons_inside_jets():
    """Both classes are true electrons (004's Delphes candidates): E/p ~ 1 in the 7x7 core; the background's
    come from b decays inside jets, so they carry hadronic leakage and ECAL energy around the core."""
    from jettf.generate.leptons import generate_lepton_shard

    fractions = {}
    for label in (1, 0):
        out = generate_lepton_shard("electrons", label, 30, seed=4)
        ecal, pt = out["ecal_et"], out["pt"]
        core = ecal[:, C - 3:C + 4, C - 3:C + 4].sum(axis=(1, 2))
        assert 0.85 < np.median(core / pt) < 1.2, label
        fractions[label] = (np.median((ecal.sum(axis=(1, 2)) - core) / pt),
                            np.median(out["hcal_et"].sum(axis=(1, 2)) / ecal.sum(axis=(1, 2))))
    assert fractions[0][0] > 5 * fractions[1][0] + 0.05 and fractions[0][1] > fractions[1][1] + 0.03


def test_cone_cells_list_each_cell_once_hardest_first():
    from jettf.calo.images import CELL_COLUMNS, cone_cells

    ecal, hcal = ATLAS.ecal, ATLAS.hcal
    eta_c, phi_c = cell_center(hcal, np.array([0, 0, 0]), np.array([31, 31, 31]))
    # Event 0: a 10 GeV HCAL tower at the centre, a 5 GeV ECAL cell 0.1 away, a 7 GeV ECAL cell outside the cone.
    # Event 2: three ECAL cells, one more than max_cells. Event 1: nothing.
    i0, p0 = np.floor(eta_c[0] / ecal.deta).astype(int), np.floor((phi_c[0] + np.pi) / ecal.dphi).astype(int)
    cells_e = make_cells(ecal, [0, 0, 2, 2, 2], [i0 + 4, i0 + 20, i0, i0 + 1, i0 + 2], [p0, p0, p0, p0, p0],
                         [5.0, 7.0, 1.0, 3.0, 2.0])
    towers = make_cells(hcal, [0], [0], [31], [10.0])
    out = cone_cells((cells_e, towers), 3, eta_c, phi_c, 0.45, 2)
    assert out.shape == (3, 2, len(CELL_COLUMNS)) and out.dtype == np.float32
    e_eta, e_phi = cell_center(ecal, np.array([i0 + 4]), np.array([p0]))
    np.testing.assert_allclose(out[0, 0], [10.0 / np.cosh(eta_c[0]), 0.0, 0.0, 10.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], [5.0 / np.cosh(e_eta[0]), e_eta[0] - eta_c[0], e_phi[0] - phi_c[0], 5.0, 0.0],
                               rtol=1e-6, atol=1e-6)
    assert not out[1].any()
    np.testing.assert_allclose(out[2, :, 3], [3.0, 2.0])  # the two hardest of three


@pytest.mark.parametrize("label", [1, 0])
def test_muon_candidates_from_the_truth_record(label, monkeypatch):
    import dataclasses

    from jettf.calo import cards
    from jettf.generate.leptons import generate_lepton_shard

    library = helpers.synthetic_library(40, 60, sqrt_s=13000.0)
    out = generate_lepton_shard("muons", label, 3, seed=5, pileup_library=library)
    assert out["image_et"].shape == (3, 32, 32)
    assert np.all((out["pt"] >= 10) & (out["pt"] < 15))
    centres = -0.45 + (np.arange(32) + 0.5) * (0.9 / 32)
    outside = np.hypot(centres[:, None], centres[None, :]) >= 0.45
    assert out["image_et"][:, outside].sum() == 0
    # Pile-up (mu = 50 soft particles per event from the library) fills the cone for both classes.
    assert np.all((out["image_et"] > 0).sum(axis=(1, 2)) > 20)
    # The card subtracts the tracked charged pile-up (half of the library's particles are charged pions).
    assert cards.MUONS.subtract_charged_pileup
    monkeypatch.setitem(cards.LEPTON_CARDS, "muons", dataclasses.replace(cards.MUONS, subtract_charged_pileup=False))
    full = generate_lepton_shard("muons", label, 3, seed=5, pileup_library=library)
    np.testing.assert_array_equal(full["pt"], out["pt"])
    assert full["image_et"].sum() > 1.15 * out["image_et"].sum()  # measured 1.29 (non-prompt) to 1.6 (prompt)
    # The cells: ECAL cells and HCAL towers of the same cone, each once, hardest first; their E_T is the image's
    # up to the cells that straddle the cone's edge (measured 0.91-1.05 per muon).
    cells = out["cells"]
    assert cells.shape == (3, cards.MUONS.max_cells, 5)
    real = cells[..., 0] > 0
    assert np.all(np.hypot(cells[..., 1], cells[..., 2])[real] < 0.45)
    assert np.all(np.diff(cells[..., 0], axis=1) <= 0) and set(np.unique(cells[..., 4][real])) == {0.0, 1.0}
    np.testing.assert_allclose(cells[..., 0].sum(axis=1), out["image_et"].sum(axis=(1, 2)), rtol=0.2)


# ------------------------------------------------------------------------------------------------ models
def test_two_tower_calo_cnn_dense_and_origin_deep_sets(tmp_path):
    import keras

    import jettf.models as zoo
    from jettf.models.smoke import forward

    model = zoo.build("calo_cnn", 2, input_shape=(31, 31, 1), n_global_features=3, extra_images={"hcal": (8, 8, 1)},
                      standardize=True, conv_blocks=3, filters=4, dense_layers=1, units=8, seed=1)
    assert set(model.input) == {"image", "hcal", "global_features"}
    assert model.get_layer("block3_pool").output.shape[1:3] == (3, 3)
    assert model.get_layer("hcal_block3_pool").output.shape[1:3] == (1, 1)  # 8 -> 4 -> 2 -> 1, own granularity
    assert {"image_norm", "hcal_norm"} <= {layer.name for layer in model.layers}
    x = {"image": np.ones((2, 31, 31, 1), "f4"), "hcal": np.zeros((2, 8, 8, 1), "f4"),
         "global_features": np.ones((2, 3), "f4")}
    model.save(tmp_path / "m.keras")
    assert np.allclose(forward(keras.saving.load_model(tmp_path / "m.keras"), x), forward(model, x))
    with pytest.raises(ValueError, match="too small for one 2x2 pooling"):
        zoo.build("calo_cnn", 2, extra_images={"hcal": (1, 1, 1)})

    dense = zoo.build("dense", 2, n_global_features=8, dense_layers=3, units=5)
    assert list(dense.input) == ["global_features"] and zoo.info("dense").input_kind == "features"
    assert [dense.get_layer(f"dense_{i}").units for i in (1, 2, 3)] == [5, 5, 5]
    with pytest.raises(ValueError, match="expected >= 1"):
        zoo.build("dense", 2)

    # Origin-centred cells see where the object is; centroid-centred ones only the relative layout.
    rng = np.random.default_rng(0)
    cells = np.zeros((1, 5, 4), "f4")
    cells[0, :4] = np.c_[rng.uniform(1, 5, 4), rng.normal(0, 0.1, (4, 2)), rng.uniform(1, 5, 4)]
    shifted = cells.copy()
    shifted[0, :4, 1] += 0.2
    for center, moves in (("origin", True), ("centroid", False)):
        net = zoo.build("efn", 2, input_shape=(None, 4), phi_sizes=(8,), f_sizes=(8,), center=center, seed=2)
        a, b = forward(net, {"constituents": cells}), forward(net, {"constituents": shifted})
        assert (not np.allclose(a, b, atol=1e-6)) == moves, center
    pfn = zoo.build("pfn", 2, input_shape=(None, 4), phi_sizes=(8,), f_sizes=(8,), center="origin", seed=2)
    pfn.save(tmp_path / "pfn.keras")
    assert np.allclose(forward(keras.saving.load_model(tmp_path / "pfn.keras"), {"constituents": cells}),
                       forward(pfn, {"constituents": cells}))


# ------------------------------------------------------------------------------------------------ study
def test_weighted_auc_and_paired_bootstrap():
    from sklearn.metrics import roc_auc_score

    from jettf.metrics import auc_difference, paired_auc_bootstrap, weighted_roc_auc

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    a = y + rng.normal(0, 1.0, 400)
    b = np.round(y + rng.normal(0, 3.0, 400), 1)  # ties
    w = rng.uniform(0.2, 2.0, 400)
    for s in (a, b):
        assert weighted_roc_auc(y, s, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)
        assert weighted_roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    boot = paired_auc_bootstrap(y, {"a": a, "b": b}, w, n_boot=300, seed=4)
    again = paired_auc_bootstrap(y, {"a": a, "b": b}, w, n_boot=300, seed=4)
    assert np.array_equal(boot["a"]["replicates"], again["a"]["replicates"])
    # Each replicate is the weighted AUC of one resample with replacement (the seed's draws, in order).
    idx = np.random.default_rng(4).integers(0, 400, size=(300, 400))
    for r in (0, 7, 299):
        assert boot["b"]["replicates"][r] == pytest.approx(
            roc_auc_score(y[idx[r]], b[idx[r]], sample_weight=w[idx[r]]), abs=1e-12)
    assert boot["a"]["low"] < boot["a"]["auc"] < boot["a"]["high"]
    d = auc_difference(boot["a"], boot["b"])
    assert d["low"] > 0 and d["delta"] == pytest.approx(boot["a"]["auc"] - boot["b"]["auc"])
    # Paired differences are tighter than the individual intervals.
    assert d["high"] - d["low"] < (boot["a"]["high"] - boot["a"]["low"]) + (boot["b"]["high"] - boot["b"]["low"])


def test_greedy_cones_pick_the_informative_cones():
    from jettf.calo.study import greedy_cones

    rng = np.random.default_rng(2)
    n = 1200
    y = rng.integers(0, 2, n)
    cones = rng.exponential(1.0, (n, 18))
    cones[:, 5] += 1.5 * (1 - y)  # the informative cone (non-prompt: more energy)
    cones[:, 12] += 0.8 * (1 - y) * rng.exponential(1.0, n)
    rows = greedy_cones(cones, y, np.arange(800), np.arange(800, n))
    assert rows[0]["cones"] == [5] and rows[0]["radii"] == [ISOLATION_RADII[5]]
    assert 12 in rows[-1]["cones"] and rows[-1]["val_auc"] >= rows[0]["val_auc"]


def test_pixel_cells_list_the_nonzero_pixels():
    from jettf.calo.images import pixel_cells

    image = np.zeros((2, 4, 4), "f4")
    image[0, 0, 3], image[0, 2, 1], image[1, 3, 3] = 2.0, 5.0, 1.0
    cells = pixel_cells(image, eta_centre=[0.0, 1.0], extent=(0.4, 0.4))
    assert cells.shape == (2, 2, 4)
    assert np.allclose(cells[0], [[5.0, 0.1, -0.1, 5.0 * np.cosh(0.1)], [2.0, -0.3, 0.3, 2.0 * np.cosh(-0.3)]])
    assert np.allclose(cells[1], [[1.0, 0.3, 0.3, np.cosh(1.3)], [0, 0, 0, 0]])


def test_study_end_to_end_on_a_tiny_file(tmp_path):
    from jettf.calo.study import StudyConfig, run_study
    from jettf.io.leptons import write_electrons

    rng = np.random.default_rng(0)
    arrays = electron_arrays(80, seed=1)
    y = arrays["y"]
    arrays["hcal_et"] *= np.where(y == 1, 0.05, 1.0)[:, None, None]  # electrons: little HCAL energy
    arrays["ecal_e"][:, C, C] += 20.0
    arrays["ecal_et"][:, C, C] += 20.0
    arrays["weight"] = rng.uniform(0.5, 1.5, 80)
    write_electrons(arrays, tmp_path / "manual" / "electrons.h5")
    config = StudyConfig(study="electrons", n=40, manual_dir=str(tmp_path / "manual"), out=str(tmp_path / "run"),
                         networks=["hl", "hl_mass"], epochs=2, n_boot=50, search=False, verbose=False)
    summary = run_study(config)
    assert set(summary["networks"]) == {"hl", "hl_mass"}
    assert summary["networks"]["hl"]["anchor"] == 0.945 and summary["sizes"]["test"] == 16
    assert [r["better"] for r in summary["orderings"]] == ["hl_mass"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "004 Table 3.1" in report and "mean_ecal_et.png" in report
    assert (tmp_path / "run" / "roc_rejection.png").exists()


def test_muon_study_pfn_reads_standardized_cells(tmp_path):
    """The study's PFN (004 App. A.1.2): the training cells' (E_T, delta eta, delta phi) standardized, and it
    separates muons with hadrons near them from isolated ones."""
    from jettf.calo.study import StudyConfig, load_sample, muon_networks, run_study
    from jettf.io.leptons import write_muons
    from tfds_builders.testing import synthetic_lepton_candidates

    write_muons(synthetic_lepton_candidates("muons", 120, seed=3), tmp_path / "manual" / "muons.h5")
    config = StudyConfig(study="muons", n=60, manual_dir=str(tmp_path / "manual"), out=str(tmp_path / "run"),
                         networks=["pfn"], epochs=8, n_boot=50, search=False, verbose=False, max_cells=64)
    assert {s["key"]: s["options"].get("particle_features") for s in muon_networks(config)}["pfn"] == "linear"
    summary = run_study(config)
    assert summary["networks"]["pfn"]["auc"] > 0.9  # non-prompt: GeV of hadrons within delta-R ~ 0.15
    assert load_sample(config)[0]["image_et"].shape == (120, 32, 32)


def test_study_inputs_other_than_images_and_cells_go_to_f_in_order():
    """A network spec's per-candidate numbers (sum E_T, cones, any extra observable) reach F as one
    ``global_features`` block in the spec's order; images and cells keep their own inputs."""
    from jettf.calo.study import _model_inputs

    rng = np.random.default_rng(0)
    data = {"image": rng.random((4, 8, 8, 1)), "cells": rng.random((4, 5, 4)), "sum_pt": rng.random((4, 1)),
            "pairs": rng.random((4, 3))}
    index = np.array([3, 0])
    x = _model_inputs({"inputs": ("cells", "pairs", "sum_pt")}, data, index)
    assert set(x) == {"constituents", "global_features"}
    np.testing.assert_array_equal(x["constituents"], data["cells"][index])
    expected = np.concatenate([data["pairs"][index], data["sum_pt"][index]], axis=1)
    np.testing.assert_array_equal(x["global_features"], expected)
    assert set(_model_inputs({"inputs": ("image",)}, data, index)) == {"image"}


def test_the_efp_grid_follows_the_profile_unless_given():
    """--profile cpu searches what two cores afford per study, --profile paper 004's grid; explicit fields win."""
    from jettf.calo.study import StudyConfig

    muons = StudyConfig(study="muons")
    assert (muons.efp_dmax, muons.efp_nmax, tuple(muons.efp_kappas), muons.efp_max_cells) == (5, 3, (1.0,), 128)
    paper = StudyConfig(study="muons", profile="paper")
    assert (paper.efp_dmax, paper.efp_nmax, len(paper.efp_kappas), paper.efp_max_cells) == (7, None, 4, None)
    assert StudyConfig(study="electrons", efp_dmax=3).efp_dmax == 3
    assert tuple(StudyConfig(study="electrons").efp_betas) == (0.5, 1.0, 2.0)
