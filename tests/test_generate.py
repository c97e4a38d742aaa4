"""Tests of the Pythia 8 + FastJet generator (jettf.generate): physics cuts, matching, layouts, seeds, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import helpers
import numpy as np
import pandas as pd
import pytest

from jettf.generate import generate_jets, generate_sample, get_card
from jettf.generate import production
from jettf.generate.__main__ import main as cli_main
from jettf.generate.pythia import _cluster, _init_pythia, generate_shard
from jettf.io import read_jetnet, read_quark_gluon, read_top_tagging
from jettf.jets import delta_phi

SAMPLES = ("jetnet", "top_tagging", "quark_gluon")
N_JETS = {"jetnet": 20, "top_tagging": 20, "quark_gluon": 60}  # per class; 60 for a robust quark/gluon comparison


def _rapidity(batch):
    """Jet rapidity from (pt, eta, mass)."""
    pt, eta, mass = (a.astype(np.float64) for a in (batch.jet_pt, batch.jet_eta, batch.jet_mass))
    return np.arcsinh(pt * np.sinh(eta) / np.hypot(pt, mass))


def _same_batches(a, b):
    width = max(a.max_constituents, b.max_constituents)  # concatenation pads to the widest batch
    a, b = a.pad_to(width), b.pad_to(width)
    for name in ("pt", "eta", "phi", "energy", "mask", "pid", "charge", "labels", "jet_pt", "jet_mass"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("sample", SAMPLES)
def test_jets_pass_the_sample_cuts(pythia_jets, sample):
    card = get_card(sample)
    batch = pythia_jets(sample, N_JETS[sample])
    assert batch.class_names == card.class_names
    np.testing.assert_array_equal(np.bincount(batch.labels, minlength=len(card.classes)), N_JETS[sample])
    lo, hi = card.pt_range
    assert np.all((batch.jet_pt >= lo) & (batch.jet_pt < hi))
    if card.abs_eta_max is not None:
        assert np.all(np.abs(batch.jet_eta) < card.abs_eta_max)
    if card.abs_y_max is not None:
        assert np.all(np.abs(_rapidity(batch)) < card.abs_y_max + 1e-5)
    assert batch.pt.dtype == np.float32 and batch.pid.dtype == np.int32 and batch.charge.dtype == np.float32
    assert batch.max_constituents <= card.max_constituents
    # constituents: pt-sorted, visible (no neutrinos), in the jet cone
    pt = np.where(batch.mask, batch.pt, -1.0)
    assert np.all(np.diff(pt, axis=1) <= 0)
    assert not np.isin(np.abs(batch.pid[batch.mask]), (12, 14, 16)).any()
    dr = np.hypot(batch.eta - batch.jet_eta[:, None], delta_phi(batch.phi, batch.jet_phi[:, None]))[batch.mask]
    assert np.quantile(dr, 0.99) < card.jet_radius * 1.1  # pseudorapidity distance; anti-kT clusters in rapidity
    # the jet four-momentum is the E-scheme sum of its constituents (all kept: fewer than 200)
    full = batch.n_constituents < card.max_constituents
    p4 = batch.four_momenta().sum(axis=1)[full]
    np.testing.assert_allclose(np.hypot(p4[:, 1], p4[:, 2]), batch.jet_pt[full], rtol=1e-4)
    m = np.sqrt(np.clip(p4[:, 0] ** 2 - (p4[:, 1:] ** 2).sum(axis=1), 0, None))
    np.testing.assert_allclose(m, batch.jet_mass[full], rtol=2e-3, atol=0.5)


@pytest.mark.parametrize("sample", SAMPLES)
def test_charges_agree_with_energyflow(pythia_jets, sample):
    energyflow = pytest.importorskip("energyflow")
    batch = pythia_jets(sample, N_JETS[sample])
    pid = batch.pid[batch.mask]
    np.testing.assert_array_equal(batch.charge[batch.mask], energyflow.pids2chrgs(pid))


def test_fjcore_clustering_equals_scikit_hep_fastjet():
    """The in-Pythia anti-kT (fjcore) finds the same leading jet as scikit-hep fastjet on the visible final state."""
    ak = pytest.importorskip("awkward")
    fastjet = pytest.importorskip("fastjet")
    import pythia8mc

    card = get_card("top_tagging")
    pythia = _init_pythia(card.pythia_settings("top"), seed=11)
    slowjet = pythia8mc.SlowJet(-1, card.jet_radius, 0.0, 25.0, 2, 2)
    for _ in range(3):
        assert pythia.next()
        event = pythia.event
        visible = [p for p in event if p.isFinal() and p.isVisible()]
        index = np.array([p.index() for p in visible])
        particles = ak.zip({k: [[getattr(p, k.lower() if k != "E" else "e")() for p in visible]]
                            for k in ("px", "py", "pz", "E")})
        sequence = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, card.jet_radius))
        jets = sequence.inclusive_jets()
        pts = np.hypot(ak.to_numpy(jets.px[0]), ak.to_numpy(jets.py[0]))
        lead = int(np.argmax(pts))
        _cluster(slowjet, event)
        assert slowjet.pT(0) == pytest.approx(pts[lead], rel=1e-9)
        expected = sorted(index[ak.to_numpy(sequence.constituent_index()[0][lead])].tolist())
        assert sorted(slowjet.constituents(0)) == expected


def test_top_jets_are_matched_to_their_top():
    result = generate_shard("top_tagging", "top", 6, seed=5)
    e, px, py, pz = result.truth.T
    pt = np.hypot(px, py)
    mass = np.sqrt(e**2 - px**2 - py**2 - pz**2)
    assert np.all(np.abs(mass - 172.5) < 15)  # the top (Breit-Wigner, width 1.4 GeV)
    y = 0.5 * np.log((e + pz) / (e - pz))
    jet_y = _rapidity(result.batch)
    dr = np.hypot(y - jet_y, delta_phi(np.arctan2(py, px), result.batch.jet_phi))
    assert np.all(dr < 0.8)
    assert np.all(result.pthat >= 300) and np.all(pt > 0)  # the card's PhaseSpace:pTHatMin


def _half_sample_mode(values):
    """Robust mode estimate (Bickel): repeatedly keep the densest half of the sorted values."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    while len(x) > 3:
        half = (len(x) + 1) // 2
        start = int(np.argmin(x[half - 1:] - x[: len(x) - half + 1]))
        x = x[start:start + half]
    return x.mean()


@pytest.mark.slow
def test_jet_mass_peaks():
    """Top, W and Z jets peak at their masses; with the underlying event (JetNet) W and Z move up by ~10 GeV."""
    no_mpi = ["PartonLevel:MPI = off"]
    masses = {}
    for name, mass, tolerance in (("w", 80.4, 6), ("z", 91.2, 6), ("t", 172.5, 10)):  # seeds 21-23: 81-82, 92, 175-180
        masses[name] = generate_shard("jetnet", name, 150, seed=21, extra_settings=no_mpi).batch.jet_mass
        assert abs(_half_sample_mode(masses[name]) - mass) < tolerance, name
    with_ue = generate_shard("jetnet", "w", 150, seed=21).batch.jet_mass
    assert 3 < np.median(with_ue) - np.median(masses["w"]) < 25
    top = generate_shard("top_tagging", "top", 100, seed=21).batch  # the Top Tagging card: MPI off
    assert abs(np.median(top.jet_mass) - 172.5) < 8


def test_same_seed_same_jets_and_classes_are_independent():
    first = generate_jets("top_tagging", 4, seed=3)
    _same_batches(first, generate_jets("top_tagging", 4, seed=3))
    only_top = generate_jets("top_tagging", 4, seed=3, classes=["top"])
    _same_batches(only_top, first.select(first.labels == 1))
    other = generate_jets("top_tagging", 4, seed=4, classes=["top"])
    assert not np.array_equal(other.jet_pt, only_top.jet_pt)


def test_quark_jets_have_fewer_constituents_than_gluon_jets(pythia_jets):
    # EnergyFlow sample at 500-550 GeV, R = 0.4: means about 38 (quark) vs 52 (gluon), spread about 12 per jet
    batch = pythia_jets("quark_gluon", N_JETS["quark_gluon"])
    n = batch.n_constituents
    gluon, quark = n[batch.labels == 0], n[batch.labels == 1]
    assert gluon.mean() - quark.mean() > 5, (gluon.mean(), quark.mean())
    # JetNet at 1 TeV, R = 0.8: about 64 vs 95
    jetnet = pythia_jets("jetnet", N_JETS["jetnet"])
    n = jetnet.n_constituents
    assert n[jetnet.labels == 0].mean() - n[jetnet.labels == 1].mean() > 10


def test_top_tagging_layout_workers_and_resume(tmp_path, monkeypatch):
    one, two = tmp_path / "one", tmp_path / "two"
    files = generate_sample("top_tagging", 4, one, seed=2, workers=1, shard_jets=2, progress=False)
    assert [f.name for f in files] == ["train.h5", "val.h5", "test.h5"]
    generate_sample("top_tagging", 4, two, seed=2, workers=2, shard_jets=2, progress=False)
    frames = {}
    for name, n, ttv in (("train.h5", 4, 0), ("val.h5", 2, 2), ("test.h5", 2, 1)):
        frame = pd.read_hdf(one / name, key="table")
        pd.testing.assert_frame_equal(frame, pd.read_hdf(two / name, key="table"))
        assert frame.shape == (n, 806)
        assert frame["is_signal_new"].sum() == n // 2 and (frame["ttv"] == ttv).all()
        top = frame["is_signal_new"] == 1
        truth = frame.loc[top, ["truthE", "truthPX", "truthPY", "truthPZ"]].to_numpy(np.float64)
        assert np.all(np.abs(np.sqrt(truth[:, 0] ** 2 - (truth[:, 1:] ** 2).sum(1)) - 172.5) < 15)
        assert (frame.loc[~top, ["truthE", "truthPX", "truthPY", "truthPZ"]] == 0).all().all()
        batch = read_top_tagging(one / name)
        np.testing.assert_array_equal(batch.labels, frame["is_signal_new"].to_numpy())
        assert np.all((batch.jet_pt > 549) & (batch.jet_pt < 651))
        frames[name] = frame

    # resume: the final files are rebuilt from the kept shards without running Pythia
    for name in frames:
        (one / name).unlink()
    monkeypatch.setattr(production, "generate_shard", _no_pythia)
    generate_sample("top_tagging", 4, one, seed=2, workers=2, shard_jets=2, progress=False)
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(pd.read_hdf(one / name, key="table"), frame)

    # an interrupted run (one shard missing) regenerates only that shard, identically
    monkeypatch.undo()
    shards = sorted((one / ".shards").glob("*/*.npz"))
    assert len(shards) == 4
    shards[1].unlink()
    generate_sample("top_tagging", 4, one, seed=2, workers=1, shard_jets=2, progress=False)
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(pd.read_hdf(one / name, key="table"), frame)


def _no_pythia(*args, **kwargs):
    raise AssertionError("a shard was regenerated although it was on disk")


# ------------------------------------------------- signals: no orphan workers, clean stop, resume
_KILL_RUN = ["top_tagging", "--n-jets", "12", "--shard-jets", "3", "--seed", "3"]  # 8 shards of about a second


def _start_and_kill(out, sig):
    """Run ``python -m jettf.generate`` with 2 workers, send ``sig`` once a shard is written, and return
    (exit status, stderr, the child processes it had, {pid: cmdline} of those running after a 10 s grace)."""
    log = out.parent / f"{out.name}.stderr"  # a file, not a pipe: surviving workers would hold a pipe open
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "jettf.generate", *_KILL_RUN, "--workers", "2",
                                 "--out", str(out)], stdout=subprocess.DEVNULL, stderr=stderr)
    children, deadline = {}, time.monotonic() + 120
    try:
        # Wait for a finished shard: a file still being written (".<name>.<random>.tmp.npz") matches *.npz too, and the
        # signal would remove it, leaving no shard to resume from.
        while not [p for p in out.glob(".shards/*/*.npz") if ".tmp" not in p.name]:  # the workers are generating
            assert proc.poll() is None and time.monotonic() < deadline, "no shard was written"
            children.update(helpers.children(proc.pid))
            time.sleep(0.05)
        children.update(helpers.children(proc.pid))
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    end = time.monotonic() + 10
    while helpers.survivors(children) and time.monotonic() < end:
        time.sleep(0.1)
    survivors = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in helpers.survivors(children)}
    for pid in survivors:  # clean up after a failure
        os.kill(pid, signal.SIGKILL)
    return proc.returncode, log.read_text(), children, survivors


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    assert cli_main([*_KILL_RUN, "--out", str(out)]) == 0
    return {name: pd.read_hdf(out / name, key="table") for name in ("train.h5", "val.h5", "test.h5")}


def _resume_and_compare(out, uninterrupted):
    shards = list(out.glob(".shards/*/*.npz"))
    assert 1 <= len(shards) < 8, "the run was not interrupted while generating"
    assert not [p for p in out.rglob("*") if ".tmp" in p.name], "a partial file was left"
    assert not (out / "train.h5").exists()
    assert cli_main([*_KILL_RUN, "--workers", "2", "--out", str(out)]) == 0  # resume
    for name, frame in uninterrupted.items():
        pd.testing.assert_frame_equal(pd.read_hdf(out / name, key="table"), frame)


def test_sigterm_as_keyboard_interrupt_installs_and_restores():
    from jettf.utils import sigterm_as_keyboard_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        with sigterm_as_keyboard_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises in the main thread long before this ends
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_like_ctrl_c_and_leaves_no_worker(tmp_path, uninterrupted):
    status, stderr, children, survivors = _start_and_kill(tmp_path, signal.SIGTERM)
    assert len(children) >= 2  # the two workers (and multiprocessing's resource tracker)
    assert survivors == {}
    assert status == 130 and "run the same command again to resume" in stderr, stderr[-2000:]
    _resume_and_compare(tmp_path, uninterrupted)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_parent_takes_the_workers_with_it(tmp_path, uninterrupted):
    status, stderr, children, survivors = _start_and_kill(tmp_path, signal.SIGKILL)
    assert status == -signal.SIGKILL and len(children) >= 2
    assert survivors == {}
    _resume_and_compare(tmp_path, uninterrupted)


def test_jetnet_layout(tmp_path, pythia_jets):
    files = generate_sample("jetnet", 3, tmp_path, seed=1, classes=["w"], shard_jets=3, progress=False)
    assert [f.name for f in files] == ["w.hdf5"]
    with h5py.File(tmp_path / "w.hdf5", "r") as f:
        particles, jets = f["particle_features"][:], f["jet_features"][:]
    assert particles.shape == (3, 30, 4) and jets.shape == (3, 4)
    assert particles.dtype == np.float32 and set(np.unique(particles[..., 3])) <= {0.0, 1.0}
    assert np.all((jets[:, 0] >= 800) & (jets[:, 0] < 1600))
    batch = read_jetnet(tmp_path, classes=["w"])
    np.testing.assert_allclose(batch.jet_pt, jets[:, 0])
    # the same jets as generate_jets with that seed (first 3 w jets)
    np.testing.assert_allclose(jets[:, 0], generate_jets("jetnet", 3, 1, classes=["w"]).jet_pt)


def test_quark_gluon_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(production, "QG_JETS_PER_FILE", 4)
    files = generate_sample("quark_gluon", 3, tmp_path, seed=1, shard_jets=3, progress=False)
    assert [f.name for f in files] == ["QG_jets.npz", "QG_jets_1.npz"]
    sizes = []
    for path in files:
        with np.load(path) as data:
            x, y = data["X"], data["y"]
        assert x.ndim == 3 and x.shape[2] == 4 and len(x) <= 4
        assert y.sum() * 2 == len(y)  # balanced
        pt = x[..., 0]
        assert np.all(np.diff(pt, axis=1) <= 0)
        sizes.append(len(y))
    assert sizes == [4, 2]
    batch = read_quark_gluon(tmp_path)
    assert len(batch) == 6 and batch.pid is not None
    assert np.all((batch.jet_pt > 499) & (batch.jet_pt < 551))
    # rebuilt from the shards into one file: the left-over second file is pointed out
    monkeypatch.setattr(production, "QG_JETS_PER_FILE", 100_000)
    with pytest.warns(UserWarning, match=r"\['QG_jets_1.npz'\] are not part of this sample"):
        generate_sample("quark_gluon", 3, tmp_path, seed=1, shard_jets=3, progress=False)


def test_cli(tmp_path, capsys):
    from jettf.io import generated_settings

    assert cli_main(["top_tagging", "--n-jets", "4", "--out", str(tmp_path), "--shard-jets", "4", "--seed", "7"]) == 0
    printed = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[-1] for p in printed] == ["train.h5", "val.h5", "test.h5"]
    assert [len(pd.read_hdf(p, key="table")) for p in printed] == [4, 2, 2]
    # every file says it was generated, and how (settings only: the same command writes the same bytes)
    expected = production.generated_mark("top_tagging", 4, 7, ("qcd", "top"), 4)
    assert [generated_settings(p) for p in printed] == [expected] * 3
    assert expected["seed"] == 7 and expected["card_fingerprint"] == get_card("top_tagging").fingerprint()


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match=r"n_jets=2 per class gives \[1, 0, 1\]"):
        generate_sample("top_tagging", 2, tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown sample 'jetnat'"):
        generate_jets("jetnat", 1, 0)
    with pytest.raises(ValueError, match="no class 'gluon'.*'g', 'q'"):
        generate_jets("jetnet", 1, 0, classes=["gluon"])
