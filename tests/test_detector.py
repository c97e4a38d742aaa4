"""The parametric detector (jettf.detector): each mechanism against its formula, determinism,
the subdetector tag through JetBatch operations, rendering and features on detector-level jets.

Single particles are shot at cell centres, one per event, a few thousand at a time; resolutions
are fitted as the standard deviation of the measured energies (within 10% of the card's formula).
"""

import dataclasses

import helpers
import numpy as np
import pytest

from jettf.detector import ATLAS, CMS, Particles, Region, simulate, simulate_jets
from jettf.detector.calorimeter import cell_center
from jettf.detector.propagation import propagate
from jettf.detector.tracker import efficiency
from jettf.images import ImageSpec, render
from jettf.jets import ECAL, GEN_EM, GEN_HAD, HCAL, TRACK, JetBatch

CARDS = {"cms": CMS, "atlas": ATLAS}
PION_MASS = 0.13957


def shoot(pid, energy, n, eta=0.3, phi=0.5, mass=0.0, charge=None):
    """``n`` events of one particle each, of total ``energy`` (GeV) at (eta, phi)."""
    energy = np.broadcast_to(np.asarray(energy, dtype=np.float64), (n,))
    eta = np.broadcast_to(np.asarray(eta, dtype=np.float64), (n,))
    pt = np.sqrt(energy**2 - mass**2) / np.cosh(eta)
    return Particles.from_arrays(pt, eta, np.broadcast_to(phi, (n,)), energy, np.full(n, pid), np.arange(n), n,
                                 charge=None if charge is None else np.full(n, charge, dtype=float))


def centre(calo, ieta=17, iphi=29):
    """A cell centre (eta, phi) of a calorimeter."""
    return cell_center(calo, np.array(ieta), np.array(iphi))


def per_event(cells, n):
    return np.bincount(cells.event, weights=cells.energy, minlength=n)


def quiet(card):
    """The card without cell noise or zero suppression: deposits only."""
    return dataclasses.replace(card, ecal=dataclasses.replace(card.ecal, cell_noise=0.0, threshold=0.0),
                               hcal=dataclasses.replace(card.hcal, cell_noise=0.0, threshold=0.0))


# ------------------------------------------------------------------ calorimeters
@pytest.mark.parametrize("name", CARDS)
def test_photon_resolution_is_the_cards(name):
    """Photons at a cell centre, with the 3x3 cells around it read out (no zero suppression):
    sigma^2 = a^2 E + c^2 E^2 + 9 sigma_cell^2 (CMS: 3 x 40 MeV = its 120 MeV noise term)."""
    card = CARDS[name]
    card = dataclasses.replace(card, ecal=dataclasses.replace(card.ecal, threshold=-np.inf))
    eta, phi = centre(card.ecal)
    n = 3000
    region = Region(eta, phi, 1.4 * card.ecal.deta, 1.4 * card.ecal.dphi)  # exactly the 3 x 3 window
    for energy in (5.0, 20.0, 100.0):
        out = simulate(shoot(22, energy, n, eta, phi), card, seed=11, region=region)
        assert np.all(np.bincount(out.ecal.event, minlength=n) == 9)
        measured = per_event(out.ecal, n)
        expected = np.sqrt(card.ecal.resolution(energy) ** 2 + 9 * card.ecal.cell_noise**2)
        assert measured.mean() == pytest.approx(energy, rel=3 * expected / energy / np.sqrt(n) + 1e-9)
        assert measured.std() == pytest.approx(expected, rel=0.10), (name, energy)
        assert len(out.hcal.energy) == 0 or per_event(out.hcal, n).max() < 5 * card.hcal.cell_noise


@pytest.mark.parametrize("name", CARDS)
def test_pion_resolution_and_response_are_the_cards(name):
    """Charged pions: (ECAL + HCAL) / (pi/e) has the HCAL card's sigma/E; the mean is pi/e(E) E."""
    card = quiet(CARDS[name])
    n = 3000
    for energy in (10.0, 50.0, 200.0):
        out = simulate(shoot(211, energy, n, mass=PION_MASS), card, seed=5)
        measured = per_event(out.ecal, n) + per_event(out.hcal, n)
        response = card.hadrons.response(energy)
        assert 0.7 < response < 0.95
        assert measured.mean() / energy == pytest.approx(response, rel=0.01)
        assert (measured / response).std() == pytest.approx(card.hcal.resolution(energy), rel=0.10), (name, energy)
        ecal_share = per_event(out.ecal, n).mean() / measured.mean()
        assert 0.2 < ecal_share < 0.6  # early showers in the ~1 interaction length of ECAL


@pytest.mark.parametrize("name", CARDS)
def test_photon_showers_are_about_three_by_three_cells(name):
    card = quiet(CARDS[name])
    eta, phi = centre(card.ecal)
    out = simulate(shoot(22, 50.0, 500, eta, phi), card, seed=2)
    cells_per_photon = np.bincount(out.ecal.event, minlength=500)
    assert np.all(cells_per_photon == 9)
    central = np.zeros(500)
    hit = (np.abs(out.ecal.eta - eta) < 1e-9) & (np.abs(out.ecal.phi - phi) < 1e-9)
    central[out.ecal.event[hit]] = out.ecal.energy[hit]
    share = central / per_event(out.ecal, 500)
    assert 0.6 < share.mean() < 0.9  # CMS: ~75-80% of a centred shower in one crystal


def test_neutral_hadrons_go_mostly_to_hcal_and_muons_leave_mips_and_neutrinos_nothing():
    card = quiet(CMS)
    n = 2000
    neutral = simulate(shoot(2112, 50.0, n, mass=0.9396), card, seed=1)
    e_ecal, e_hcal = per_event(neutral.ecal, n), per_event(neutral.hcal, n)
    assert e_hcal.mean() > 1.5 * e_ecal.mean()
    assert np.mean(e_ecal == 0) == pytest.approx(np.exp(-card.ecal.depth), abs=0.04)  # no MIP: nothing or a shower
    muons = simulate(shoot(13, 50.0, 200, mass=0.10566), card, seed=1)
    np.testing.assert_allclose(per_event(muons.ecal, 200), card.ecal.mip)
    np.testing.assert_allclose(per_event(muons.hcal, 200), card.hcal.mip)
    assert np.bincount(muons.ecal.event, minlength=200).max() == 1  # a MIP is one cell
    neutrinos = simulate(shoot(14, 50.0, 200), card, seed=1)
    assert len(neutrinos.ecal.energy) == len(neutrinos.hcal.energy) == len(neutrinos.tracks.pt) == 0
    assert len(neutrinos.pflow.pt) == 0


@pytest.mark.parametrize("name", CARDS)
def test_energy_is_conserved_up_to_the_response(name):
    """Mixed jets: every visible particle's energy is in the cells, hadrons scaled by pi/e."""
    card = quiet(CARDS[name])
    rng = np.random.default_rng(0)
    n, m = 50, 40
    pid = rng.choice([22, 211, -211, 130, 2112, 11, 13, 14], (n * m))
    mass = np.select([np.abs(pid) == 211, pid == 2112, pid == 130, np.abs(pid) == 13],
                     [PION_MASS, 0.9396, 0.4976, 0.1057])
    pt = rng.uniform(1.0, 30.0, n * m)  # above the looper threshold of both cards
    eta = rng.uniform(-1.0, 1.0, n * m)
    energy = np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2)
    event = np.repeat(np.arange(n), m)
    particles = Particles.from_arrays(pt, eta, rng.uniform(-np.pi, np.pi, n * m), energy, pid, event, n)
    out = simulate(particles, card, seed=4)
    a = np.abs(pid)
    expected = np.where(np.isin(a, (22, 11)), energy, 0.0)
    expected += np.where(a >= 100, card.hadrons.response(energy) * energy, 0.0)
    expected += np.where(a == 13, card.ecal.mip + card.hcal.mip, 0.0)
    measured = per_event(out.ecal, n) + per_event(out.hcal, n)
    # Per event, the sum of ~40 particles' fluctuations (their resolutions; MIPs do not fluctuate): pulls ~ N(0, 1).
    sigma = np.where(a >= 100, card.hcal.resolution(energy), np.where(np.isin(a, (22, 11)),
                                                                       card.ecal.resolution(energy), 0.0))
    expected_event = np.bincount(event, weights=expected, minlength=n)
    pulls = (measured - expected_event) / np.sqrt(np.bincount(event, weights=sigma**2, minlength=n))
    assert abs(pulls.mean()) < 0.5 and 0.6 < pulls.std() < 1.4


@pytest.mark.parametrize("name", CARDS)
def test_noise_cells_fire_at_the_gaussian_tail_rate(name):
    """Empty events: the number of cells above threshold in a region is Binomial(cells, P(noise > threshold))."""
    from scipy import special

    card = CARDS[name]
    n = 200
    region = Region(np.zeros(n), np.zeros(n), 0.5, 0.5)
    out = simulate(Particles.from_arrays([], [], [], [], [], [], n), card, seed=9, region=region)
    for calo, cells in ((card.ecal, out.ecal), (card.hcal, out.hcal)):
        n_cells = (np.floor(0.5 / calo.deta) - np.floor(-0.5 / calo.deta) + 1) * (
            np.floor((0.5 + np.pi) / calo.dphi) - np.floor((-0.5 + np.pi) / calo.dphi) + 1)
        p = 0.5 * special.erfc(calo.threshold / calo.cell_noise / np.sqrt(2))
        expected = n * n_cells * p
        assert len(cells.energy) == pytest.approx(expected, abs=4 * np.sqrt(expected) + 1)
        assert np.all(cells.energy > calo.threshold)
        assert np.all(np.abs(cells.eta) <= 0.5 + calo.deta) and np.all(np.abs(cells.phi) <= 0.5 + calo.dphi)


def test_zero_suppression_drops_cells_below_threshold():
    card = CMS
    eta, phi = centre(card.ecal)
    out = simulate(shoot(22, 1.0, 500, eta, phi), card, seed=3, region=Region(eta, phi, 0.0, 0.0))
    assert np.all(out.ecal.energy > card.ecal.threshold)
    assert np.bincount(out.ecal.event, minlength=500).max() < 9  # the 1 GeV shower's tails are suppressed


# ---------------------------------------------------------------- field, tracker
@pytest.mark.parametrize("name", CARDS)
def test_bending_matches_the_formula(name):
    """Inside the field the impact azimuth turns by asin(0.3 B R / 2 pt) ~ 0.3 q B R / (2 pt)."""
    card = CARDS[name]
    radius = min(card.ecal.radius, card.solenoid.radius)
    pt = np.array([5.0, 10.0, 50.0, 200.0, 5.0, 10.0])
    q = np.array([1, 1, 1, 1, -1, -1.0])
    hit = propagate(pt, np.zeros(6), np.full(6, 0.2), q, card.solenoid, radius, 10.0)
    formula = 0.3 * q * card.solenoid.field * radius / (2 * pt)
    np.testing.assert_allclose(0.2 - hit.phi, formula, rtol=0.01)
    np.testing.assert_allclose(0.2 - hit.phi, q * np.arcsin(0.3 * card.solenoid.field * radius / (2 * pt)), rtol=1e-9)
    np.testing.assert_allclose(hit.r, radius, rtol=1e-9)
    neutral = propagate(pt, np.ones(6), np.full(6, 0.2), np.zeros(6), card.solenoid, radius, 10.0)
    np.testing.assert_allclose(neutral.phi, 0.2)
    np.testing.assert_allclose(neutral.eta, 1.0)


def test_outside_the_field_particles_go_straight():
    """ATLAS: the ECAL (1.4 m) lies outside the 1.15 m field, so the turn at the ECAL exceeds the
    turn at the field's edge but stays below the in-field formula at 1.4 m."""
    sol = ATLAS.solenoid
    at_edge = propagate(np.array([10.0]), np.zeros(1), np.zeros(1), np.ones(1), sol, sol.radius, 5.0).phi
    at_ecal = propagate(np.array([10.0]), np.zeros(1), np.zeros(1), np.ones(1), sol, ATLAS.ecal.radius, 5.0).phi
    assert -np.arcsin(0.3 * 2 * 1.4 / 20) < at_ecal[0] < at_edge[0] < 0


@pytest.mark.parametrize("name", CARDS)
def test_loopers_never_reach_the_barrel(name):
    card = CARDS[name]
    looper = card.looper_pt()
    assert looper == pytest.approx(0.3 * card.solenoid.field * min(card.ecal.radius, card.solenoid.radius) / 2)
    pt = np.array([0.8 * looper, 1.2 * looper])
    hit = propagate(pt, np.zeros(2), np.zeros(2), np.ones(2), card.solenoid, card.ecal.radius, card.ecal.half_length)
    assert hit.reached.tolist() == [False, True]
    n = 500
    out = simulate(shoot(211, np.sqrt((0.8 * looper) ** 2 + PION_MASS**2), n, eta=0.0, mass=PION_MASS),
                   quiet(card), seed=1)
    assert len(out.ecal.energy) == len(out.hcal.energy) == 0  # curled up in the tracker
    assert len(out.tracks.pt) > 0.6 * n  # but tracked


@pytest.mark.parametrize("name", CARDS)
def test_track_efficiency_and_thresholds(name):
    card = CARDS[name]
    n = 4000
    for pt, eta, expected in ((0.5, 0.5, 0.70), (5.0, 0.5, 0.95), (0.5, 2.0, 0.60), (5.0, 2.0, 0.85), (5.0, 2.7, 0.0),
                              (0.05, 0.5, 0.0)):
        assert efficiency(card.tracker, np.array([pt]), np.array([eta]))[0] == expected
        e = np.sqrt((pt * np.cosh(eta)) ** 2 + PION_MASS**2)
        out = simulate(shoot(211, e, n, eta=eta, mass=PION_MASS), card, seed=7)
        found = len(out.tracks.pt) / n
        assert found == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / n) + 1e-9), (pt, eta)
    neutral = simulate(shoot(22, 10.0, 100), card, seed=1)
    assert len(neutral.tracks.pt) == 0


@pytest.mark.parametrize("name", CARDS)
def test_track_resolution(name):
    """The curvature 1/pt is smeared by a (+) b pt of the card; angles by ~1 mrad; tracks at the vertex."""
    card = CARDS[name]
    n = 4000
    for pt in (2.0, 20.0, 200.0):
        out = simulate(shoot(211, np.sqrt((pt * np.cosh(0.3)) ** 2 + PION_MASS**2), n, mass=PION_MASS), card, seed=3)
        k = card.tracker.resolution_eta_edges
        i = int(np.searchsorted(k, 0.3))
        expected = np.hypot(card.tracker.resolution_a[i], card.tracker.resolution_b[i] * pt)
        assert (pt / out.tracks.pt).std() == pytest.approx(expected, rel=0.10)
        assert (out.tracks.phi - 0.5).std() == pytest.approx(card.tracker.angular_resolution, rel=0.1)
        assert abs(np.mean(out.tracks.phi) - 0.5) < 1e-4  # drawn at the vertex direction, not bent


# ------------------------------------------------------------------ determinism
def test_same_seed_same_cells_and_other_seed_other_cells(pythia_jets):
    batch = pythia_jets("top_tagging", n_jets=24, seed=1)
    particles = Particles.from_batch(batch)
    a, b, c = (simulate(particles, "cms", seed=s) for s in (3, 3, 4))
    for name in ("key", "energy"):
        np.testing.assert_array_equal(getattr(a.ecal, name), getattr(b.ecal, name))
        np.testing.assert_array_equal(getattr(a.hcal, name), getattr(b.hcal, name))
    np.testing.assert_array_equal(a.pflow.pt, b.pflow.pt)
    assert len(a.ecal.energy) != len(c.ecal.energy) or not np.array_equal(a.ecal.energy, c.ecal.energy)
    rng_out = simulate(particles, "cms", seed=np.random.default_rng(3))
    np.testing.assert_array_equal(rng_out.ecal.energy, a.ecal.energy)


# ----------------------------------------------------------- JetBatch, images, features
@pytest.fixture(scope="module")
def detector_jets(request):
    gen = request.getfixturevalue("pythia_jets")("top_tagging", n_jets=24, seed=1)
    return gen, simulate_jets(gen, "cms", seed=1, view="objects"), simulate_jets(gen, "atlas", seed=1)


def test_detector_jets_are_jetbatches_with_tags(detector_jets):
    gen, objects, pflow = detector_jets
    for det in (objects, pflow):
        assert det.subdetector.dtype == np.int8 and det.subdetector.shape == det.pt.shape
        assert set(np.unique(det.subdetector[det.mask])) == {TRACK, ECAL, HCAL}
        assert not det.subdetector[~det.mask].any()
        np.testing.assert_array_equal(det.labels, gen.labels)
        assert np.all(np.diff(np.where(det.mask, det.pt, -1), axis=1) <= 0)  # pt-sorted
    charged = pflow.subdetector == TRACK
    assert np.all(np.abs(pflow.charge[charged]) == 1) and not pflow.charge[pflow.subdetector == ECAL].any()
    assert set(np.unique(np.abs(pflow.pid[pflow.subdetector == ECAL]))) == {22}
    # Jet kinematics: the particle-flow sum, close to the generator-level jet.
    assert np.median(pflow.jet_pt / gen.jet_pt) == pytest.approx(1.0, abs=0.1)
    assert np.median(np.abs(pflow.jet_eta - gen.jet_eta)) < 0.02
    # Delphes-like merging: fewer particle-flow candidates than generator-level particles.
    assert pflow.n_constituents.mean() < gen.n_constituents.mean()


def test_subdetector_survives_jetbatch_operations(detector_jets):
    _, _, det = detector_jets

    def consistent(b):  # a constituent's tag stays with it: tracks are exactly the charged ones
        assert np.array_equal(b.subdetector == TRACK, b.mask & (b.charge != 0))

    consistent(det)
    consistent(det.sort_by_pt())
    consistent(det.pad_to(10))
    consistent(det.pad_to(det.max_constituents + 5))
    consistent(det.select([3, 1]))
    consistent(det[0])
    joined = JetBatch.concatenate([det, det.pad_to(7)])
    consistent(joined)
    assert joined.subdetector.shape == joined.pt.shape
    with pytest.raises(ValueError, match="'subdetector' is set in some batches but not in others"):
        JetBatch.concatenate([det, JetBatch.from_ptetaphie(det.pt, det.eta, det.phi, det.energy, mask=det.mask,
                                                           pid=det.pid, charge=det.charge, labels=det.labels,
                                                           class_names=det.class_names)])


def test_subdetector_round_trips_the_generator_work_files(detector_jets, tmp_path):
    from jettf.generate.pythia import load_batch, save_batch

    _, _, det = detector_jets
    save_batch(tmp_path / "b.npz", det)
    back, _ = load_batch(tmp_path / "b.npz")
    np.testing.assert_array_equal(back.subdetector, det.subdetector)


def test_tracks_ecal_hcal_channels_hold_each_subdetector(detector_jets):
    _, det, _ = detector_jets
    spec = ImageSpec(125, 1.0875, ("tracks", "ecal", "hcal"))  # 003's jet view: 125 crystals of 0.0174
    images = render(det, spec)
    relative_eta = np.abs(det.eta - det.jet_eta[:, None])
    relative_phi = np.abs((det.phi - det.jet_phi[:, None] + np.pi) % (2 * np.pi) - np.pi)
    inside = det.mask & (relative_eta < 1.0875) & (relative_phi < 1.0875)
    for k, (tag, quantity) in enumerate(((TRACK, det.pt), (ECAL, det.energy), (HCAL, det.energy))):
        expected = np.sum(np.where(inside & (det.subdetector == tag), quantity, 0.0), axis=1)
        np.testing.assert_allclose(images[..., k].sum(axis=(1, 2)), expected, rtol=1e-4)
    # Tracks are isolated pixels, ECAL showers a few pixels each.
    assert (images[..., 0] > 0).sum() < (images[..., 1] > 0).sum()


def test_generator_em_had_split_channels(pythia_jets):
    gen = pythia_jets("top_tagging", n_jets=24, seed=1)
    spec = ImageSpec(33, 0.8, ("em", "had", "pt"))
    images = render(gen, spec)  # from pid, no tags needed
    split = gen.with_generator_split()
    np.testing.assert_array_equal(render(split, spec), images)
    a = np.abs(gen.pid)
    d_phi = np.abs((gen.phi - gen.jet_phi[:, None] + np.pi) % (2 * np.pi) - np.pi)
    inside = gen.mask & (np.abs(gen.eta - gen.jet_eta[:, None]) < 0.8) & (d_phi < 0.8)
    for k, (tag, species) in enumerate(((GEN_EM, np.isin(a, (11, 22))), (GEN_HAD, a >= 100))):
        assert np.array_equal(split.subdetector == tag, gen.mask & species)
        expected = np.sum(np.where(inside & (split.subdetector == tag), gen.pt, 0), axis=1)
        np.testing.assert_allclose(images[..., k].sum(axis=(1, 2)), expected, rtol=1e-4)
    # em + had + muons = all
    assert np.all(images[..., 0].sum((1, 2)) + images[..., 1].sum((1, 2)) <= images[..., 2].sum((1, 2)) * (1 + 1e-5))


def test_detector_channels_need_tags(pythia_jets):
    gen = pythia_jets("top_tagging", n_jets=24, seed=1)
    with pytest.raises(ValueError, match=r"channels \['tracks'\] need JetBatch.subdetector"):
        render(gen, ImageSpec(16, 0.8, ("tracks", "pt")))


def test_features_run_on_detector_level_jets(detector_jets):
    from jettf.features import compute_features

    gen, _, det = detector_jets
    values, names = compute_features(det.select(np.arange(8)))
    assert values.shape == (8, len(names)) and np.all(np.isfinite(values))
    reference, _ = compute_features(gen.select(np.arange(8)))
    k = names.index("jet_mass")
    assert np.corrcoef(values[:, k], reference[:, k])[0, 1] > 0.9  # the same jets, measured


def test_errors_name_the_problem():
    ones = np.ones((2, 3))
    batch = JetBatch.from_ptetaphie(ones, 0 * ones, 0 * ones, ones)
    with pytest.raises(ValueError, match="JetBatch.pid is None; the detector needs PDG ids"):
        simulate_jets(batch)
    with pytest.raises(ValueError, match="unknown detector card 'lhcb'"):
        simulate_jets(JetBatch.from_ptetaphie(ones, 0 * ones, 0 * ones, ones, pid=211 * ones), "lhcb")
    with pytest.raises(ValueError, match="view 'cells'"):
        simulate_jets(batch, view="cells")
    with pytest.raises(ValueError, match="'event' must be non-decreasing"):
        Particles(ones[0], ones[0], ones[0], ones[0], ones[0], ones[0], np.array([1, 0, 0]), 2)


# ------------------------------------------------------------- detector-level samples
def test_truth_matching_on_batches_equals_pythias(tmp_path):
    """match_record (on Pythia.nextBatch records) gives pythia._match's answers on the same events."""
    from jettf.generate.detector_level import _records, match_record
    from jettf.generate.pythia import _init_pythia, _match
    from jettf.generate.samples import get_card

    cases = [("top_tagging", "top", ("top_tagging", "top")), ("top_tagging", "qcd", ("jetnet", "g")),
             ("top_tagging", "qcd", ("jetnet", "q")), ("quark_gluon", "gluon", ("quark_gluon", "gluon")),
             ("quark_gluon", "quark", ("quark_gluon", "quark"))]
    rng = np.random.default_rng(0)
    answers = 0
    for sample, process, (card_name, class_name) in cases:
        card, jet_class = get_card(sample), get_card(card_name).jet_class(class_name)
        pythia = _init_pythia(card.pythia_settings(process) + ("PartonLevel:MPI = off", "HadronLevel:all = off"), 3)
        data = pythia.particleData
        for _ in range(6):
            batch = pythia.nextBatch(1)
            event = pythia.event
            record = _records(batch, lambda pid: bool(data.isResonance(pid)))(0)
            outgoing = [event[event[i].iBotCopyId()] for i in (5, 6)]
            assert [record.bot_copy_id(i) for i in (5, 6)] == [p.index() for p in outgoing]
            axes = [(p.y(), p.phi()) for p in outgoing] + [tuple(rng.uniform([-2, -np.pi], [2, np.pi]))]
            for y, phi in axes:
                expected = _match(event, jet_class, y, phi, 0.64)
                got = match_record(record, jet_class, y, phi, 0.64)
                assert (expected is None) == (got is None), (sample, class_name)
                if expected is not None:
                    np.testing.assert_allclose(got, expected, rtol=1e-12)
                    answers += 1
    assert answers > 10


def test_detector_level_sample_is_readable_and_has_fewer_constituents(tmp_path, capsys):
    """``python -m jettf.generate top_tagging --detector atlas``: the public layout, the detector card in
    the files' mark, the jets generate_jets makes with the same seed (reproducible), and fewer
    constituents than the generator-level jets of the same Pythia events (Delphes-like merging)."""
    from jettf.generate import generate_jets
    from jettf.generate.__main__ import main
    from jettf.io import generated_settings, read_top_tagging

    assert main(["top_tagging", "--n-jets", "4", "--out", str(tmp_path), "--seed", "3", "--detector", "atlas"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / n) for n in ("train.h5", "val.h5", "test.h5")]  # no FastJet banner
    batch = JetBatch.concatenate([read_top_tagging(tmp_path / n) for n in ("train.h5", "val.h5", "test.h5")])
    assert len(batch) == 8 and sorted(np.bincount(batch.labels)) == [4, 4]
    assert np.all((batch.jet_pt >= 550) & (batch.jet_pt < 650)) and np.all(np.abs(batch.jet_eta) < 2)
    mark = generated_settings(tmp_path / "train.h5")
    assert mark["detector"]["card"] == "atlas" and mark["detector"]["fingerprint"] == ATLAS.fingerprint()

    detector = generate_jets("top_tagging", 4, seed=3, detector="atlas")  # the same shards, made again
    np.testing.assert_allclose(np.sort(batch.jet_pt), np.sort(detector.jet_pt), rtol=1e-5)
    np.testing.assert_array_equal(np.sort(batch.n_constituents), np.sort(detector.n_constituents))
    assert set(np.unique(detector.subdetector[detector.mask])) <= {TRACK, ECAL, HCAL}
    assert set(np.unique(np.abs(detector.pid[detector.subdetector == HCAL]))) <= {130}
    assert np.all(detector.jet_mass[detector.labels == 1] > 90)  # matched top jets keep a top-like mass
    generator_level = generate_jets("top_tagging", 4, seed=3)  # the same Pythia events, without the detector
    assert detector.n_constituents.mean() < generator_level.n_constituents.mean() - 3


# ------------------------------------------------------------------------ pile-up



def test_pileup_overlay_poisson_region_and_charged_hadron_subtraction(tmp_path, monkeypatch):
    from jettf.detector import MinBiasLibrary, PileUp

    library = helpers.synthetic_library()
    n, mu = 400, 20
    rng = np.random.default_rng(1)
    whole = library.overlay(mu, n, rng)
    assert len(whole) / n == pytest.approx(mu * 40, rel=0.03) and whole.pileup.all()
    region = Region(np.full(n, 1.0), np.full(n, 3.0), 0.5, 0.4)
    inside = library.overlay(mu, n, np.random.default_rng(1), region)
    assert np.all(np.abs(inside.eta - 1.0) <= 0.5)
    assert np.all(np.abs((inside.phi - 3.0 + np.pi) % (2 * np.pi) - np.pi) <= 0.4)
    assert len(inside) / n == pytest.approx(mu * 40 * (1.0 / 8) * (0.8 / (2 * np.pi)), rel=0.1)
    assert np.all(np.diff(inside.event) >= 0)

    # Through the detector: tracks of pile-up are objects, but not particle-flow candidates (CHS).
    gen = shoot(22, 50.0, 100, eta=1.0, phi=3.0)
    window = Region(np.ones(100), np.full(100, 3.0), 0.6, 0.6)
    out = simulate(gen, "cms", seed=2, pileup=PileUp(library, 30), region=window)
    assert out.particles.pileup.sum() > 100 * 30 * 40 * 0.15 * 0.15
    assert out.tracks.pileup.any() and not out.pflow.pileup.any()
    assert len(out.pflow.pt) > 100  # neutral pile-up survives CHS

    # The library round-trips through its cache file; cached() generates only once.
    calls = []
    monkeypatch.setattr(MinBiasLibrary, "generate", classmethod(lambda cls, *a, **k: calls.append(a) or library))
    first = MinBiasLibrary.cached(n_events=50, ecm=14000.0, seed=0, cache_dir=tmp_path)
    second = MinBiasLibrary.cached(n_events=50, ecm=14000.0, seed=0, cache_dir=tmp_path)
    assert len(calls) == 1 and len(list(tmp_path.glob("minbias_14000GeV_n50_seed0_*.npz"))) == 1
    np.testing.assert_array_equal(second.pt, library.pt)
    np.testing.assert_array_equal(first.offsets, library.offsets)


def test_charged_pileup_subtraction_removes_tracked_pileup_deposits_only():
    """simulate(subtract_charged_pileup=True): the cells lose what tracked charged pile-up deposited (all but the
    tracking inefficiency), keep neutral pile-up and the hard event, and the tracks stay."""
    from jettf.detector import MinBiasLibrary, PileUp

    def library(pid):  # 40 pile-up particles of one kind per event, pt 5 GeV, |eta| < 1
        rng = np.random.default_rng(0)
        n_events, per = 50, 40
        eta = np.sort(rng.uniform(-1, 1, (n_events, per)), axis=1).ravel()
        pt = np.full(len(eta), 5.0)
        return MinBiasLibrary(pt, eta, rng.uniform(-np.pi, np.pi, len(eta)), pt * np.cosh(eta),
                              np.full(len(eta), pid), np.arange(n_events + 1) * per, 14000.0, 0)

    n = 200
    gen = shoot(22, 50.0, n, eta=0.2, phi=1.0)
    window = Region(np.full(n, 0.2), np.full(n, 1.0), 0.8, 0.8)

    def energy(out):
        return per_event(out.ecal, n).sum() + per_event(out.hcal, n).sum()

    hard = simulate(gen, "atlas", seed=4, region=window)
    for pid in (22, 211):
        pileup = PileUp(library(pid), 10)
        full = simulate(gen, "atlas", seed=4, pileup=pileup, region=window)
        sub = simulate(gen, "atlas", seed=4, pileup=pileup, region=window, subtract_charged_pileup=True)
        added_full, added_sub = energy(full) - energy(hard), energy(sub) - energy(hard)
        assert added_full > 0.3 * n * 10 * 40 * 5.0 * (1.6 / 2.0) * (1.6 / (2 * np.pi))  # pile-up reached the cells
        charged = sub.particles.pileup & (sub.particles.charge != 0)
        found = sub.tracks.pileup.sum() / max(int(charged.sum()), 1)
        expected = 1.0 if pid == 22 else 1.0 - found  # photons all stay; of the pions, the untracked ones
        assert added_sub / added_full == pytest.approx(expected, abs=0.03)
        if pid == 211:
            assert 0.85 < found < 1.0
            # Particle flow no longer expects the subtracted deposits from the pile-up tracks, so what the untracked
            # pions left becomes neutral candidates (0.40 of it above the thresholds here; 0.13 if the flow still
            # subtracted the pile-up tracks' expected deposits).
            neutral = lambda out: out.pflow.energy[out.pflow.charge == 0].sum()  # noqa: E731
            assert neutral(sub) - neutral(hard) > 0.3 * added_sub
        np.testing.assert_array_equal(sub.tracks.pt, full.tracks.pt)
    # Without pile-up there is nothing to subtract: the same cells.
    plain = simulate(gen, "atlas", seed=4, region=window, subtract_charged_pileup=True)
    np.testing.assert_array_equal(per_event(plain.ecal, n), per_event(hard.ecal, n))
