"""Readers and writers of the public formats (jettf.io).

Input files are built by hand in the exact public layouts with h5py, pandas
(PyTables) and numpy, independently of the writers; expected kinematics are
computed here with numpy (and EnergyFlow's PDG tables).
"""

import re
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from energyflow.utils import pids2chrgs, pids2ms

from jettf.io import (
    JETNET_CLASSES,
    FileFormatError,
    JetChunks,
    SkippedJetsWarning,
    read_jetnet,
    read_quark_gluon,
    read_top_tagging,
    write_jetnet,
    write_quark_gluon,
    write_top_tagging,
)
from jettf.jets import JetBatch

RNG_SEED = 7
TOP_COLUMNS = [f"{c}_{i}" for i in range(200) for c in ("E", "PX", "PY", "PZ")] + [
    "truthE", "truthPX", "truthPY", "truthPZ", "ttv", "is_signal_new"]


# ------------------------------------------------------- hand-built files
def jetnet_arrays(n_jets, n_slots=30, seed=RNG_SEED):
    """particle_features [N, n_slots, 4] and jet_features [N, 4] as in JetNet, with 1..n_slots particles."""
    rng = np.random.default_rng(seed)
    count = rng.integers(1, n_slots + 1, n_jets)
    mask = np.arange(n_slots)[None, :] < count[:, None]
    ptrel = np.sort(rng.dirichlet(np.ones(n_slots), n_jets), axis=1)[:, ::-1] * mask
    particles = np.stack([rng.normal(0, 0.2, ptrel.shape) * mask, rng.normal(0, 0.2, ptrel.shape) * mask,
                          ptrel, mask], axis=-1).astype(np.float32)
    jets = np.stack([rng.uniform(900, 1100, n_jets), rng.uniform(-1.5, 1.5, n_jets),
                     rng.uniform(10, 200, n_jets), count], axis=-1).astype(np.float32)
    return particles, jets


def write_h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for name, data in datasets.items():
            f.create_dataset(name, data=data)


def top_frame(n_jets, seed=RNG_SEED):
    """A DataFrame in the Top Tagging layout plus the constituent four-momenta [N, 200, 4] it holds."""
    rng = np.random.default_rng(seed)
    count = rng.integers(1, 60, n_jets)
    mask = np.arange(200)[None, :] < count[:, None]
    pt = np.sort(rng.exponential(30, (n_jets, 200)), axis=1)[:, ::-1] * mask
    eta, phi = rng.normal(0.5, 0.3, pt.shape), rng.uniform(-np.pi, np.pi, (n_jets, 1)) + rng.normal(0, 0.3, pt.shape)
    p4 = np.stack([pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1)
    p4 = (p4 * mask[..., None]).astype(np.float32)
    frame = pd.DataFrame(np.concatenate([p4.reshape(n_jets, 800), np.zeros((n_jets, 4), np.float32)], axis=1),
                         columns=TOP_COLUMNS[:804])
    frame["ttv"] = np.zeros(n_jets, np.int64)
    frame["is_signal_new"] = rng.integers(0, 2, n_jets)
    return frame, p4


def qg_arrays(n_jets, width, seed=RNG_SEED):
    """X [N, width, 4] = (pt, y, phi, pid) zero-padded, and y [N], as in the EnergyFlow files."""
    rng = np.random.default_rng(seed)
    count = rng.integers(1, width + 1, n_jets)
    mask = np.arange(width)[None, :] < count[:, None]
    pid = rng.choice([22, 211, -211, 321, -321, 130, 2112, -2112, 2212, 11, -13], (n_jets, width))
    x = np.stack([rng.exponential(10, mask.shape) + 0.5, rng.normal(0, 0.4, mask.shape),
                  rng.normal(1.0, 0.4, mask.shape), pid], axis=-1) * mask[..., None]
    return x, rng.integers(0, 2, n_jets).astype(np.float64)


def random_batch(n_jets, width, class_names, seed=RNG_SEED):
    """A JetBatch of massive constituents (PDG masses) with random labels, pid and charge."""
    x, _ = qg_arrays(n_jets, width, seed)
    pt, rapidity, phi, pid = np.moveaxis(x, -1, 0)
    mt = np.hypot(pt, pids2ms(pid))
    labels = np.random.default_rng(seed + 1).integers(0, len(class_names), n_jets)
    return JetBatch.from_cartesian(mt * np.cosh(rapidity), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(rapidity),
                                   mask=pt > 0, labels=labels, class_names=class_names, pid=pid,
                                   charge=pids2chrgs(pid))


def assert_batches_equal(a: JetBatch, b: JetBatch):
    assert a.class_names == b.class_names
    for name in ("pt", "eta", "phi", "energy", "mask", "jet_pt", "jet_eta", "jet_phi", "jet_mass", "pid", "charge",
                 "labels"):
        va, vb = getattr(a, name), getattr(b, name)
        assert (va is None) == (vb is None), name
        if va is not None:
            np.testing.assert_array_equal(va, vb, err_msg=name)


def opened(path):
    """Whether this process holds a file descriptor on ``path`` (Linux)."""
    return any(fd.resolve() == path.resolve() for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink())


def truncate(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


# ------------------------------------------------------------------ JetNet
def test_jetnet_directory_reads_present_classes_in_order(tmp_path):
    for seed, name in enumerate(["t", "g"]):
        particles, jets = jetnet_arrays(5 + seed, seed=seed)
        write_h5(tmp_path / f"{name}.hdf5", particle_features=particles, jet_features=jets)
    batch = read_jetnet(tmp_path)
    assert batch.class_names == ("g", "t")
    np.testing.assert_array_equal(batch.labels, [0] * 6 + [1] * 5)
    picked = read_jetnet(tmp_path, classes=["t", "g"])
    assert picked.class_names == ("t", "g")
    np.testing.assert_array_equal(picked.labels, [0] * 5 + [1] * 6)
    assert read_jetnet(tmp_path, classes="t").class_names == ("t",)


def test_jetnet_kinematics_from_relative_coordinates(tmp_path):
    particles, jets = jetnet_arrays(8)
    write_h5(tmp_path / "w.hdf5", particle_features=particles, jet_features=jets)
    batch = read_jetnet(tmp_path / "w.hdf5")
    mask = particles[..., 3] == 1
    pt = particles[..., 2].astype(np.float64) * jets[:, :1]
    eta = particles[..., 0] + jets[:, 1:2].astype(np.float64)
    assert batch.class_names == ("w",) and batch.labels.tolist() == [0] * 8
    np.testing.assert_array_equal(batch.mask, mask)
    np.testing.assert_allclose(batch.pt, pt * mask, rtol=1e-6)
    np.testing.assert_allclose(batch.eta, eta * mask, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(batch.phi, particles[..., 1], atol=1e-6)
    np.testing.assert_allclose(batch.energy, pt * np.cosh(eta) * mask, rtol=1e-5)
    np.testing.assert_array_equal(batch.jet_pt, jets[:, 0])
    np.testing.assert_array_equal(batch.jet_eta, jets[:, 1])
    np.testing.assert_array_equal(batch.jet_mass, jets[:, 2])
    np.testing.assert_array_equal(batch.jet_phi, 0)
    np.testing.assert_array_equal(batch.n_constituents, jets[:, 3])


def test_jetnet_150_particle_files(tmp_path):
    particles, jets = jetnet_arrays(4, n_slots=150)
    write_h5(tmp_path / "z150.hdf5", particle_features=particles, jet_features=jets)
    with pytest.raises(FileNotFoundError, match=r"no JetNet files; expected .*z\.hdf5"):
        read_jetnet(tmp_path)
    batch = read_jetnet(tmp_path, n_particles=150)
    assert batch.class_names == ("z",) and batch.max_constituents == 150
    assert read_jetnet(tmp_path / "z150.hdf5").class_names == ("z",)
    with pytest.raises(FileFormatError, match=r"z150\.hdf5: 'particle_features' has shape \(4, 150, 4\); expected"):
        read_jetnet(tmp_path / "z150.hdf5", n_particles=30)


def test_jetnet_max_jets_is_per_class(tmp_path):
    for name in ("q", "t"):
        particles, jets = jetnet_arrays(10)
        write_h5(tmp_path / f"{name}.hdf5", particle_features=particles, jet_features=jets)
    batch = read_jetnet(tmp_path, max_jets=3)
    np.testing.assert_array_equal(batch.labels, [0, 0, 0, 1, 1, 1])
    tail = read_jetnet(tmp_path, start=8, max_jets=3)  # rows 8 and 9 of each class
    assert_batches_equal(tail, read_jetnet(tmp_path).select([8, 9, 18, 19]))


def test_jetnet_writer_layout_and_round_trip(tmp_path):
    batch = random_batch(40, 45, JETNET_CLASSES)
    written = write_jetnet(batch, tmp_path)
    present = [JETNET_CLASSES[i] for i in np.unique(batch.labels)]
    assert [p.name for p in written] == [f"{c}.hdf5" for c in present]
    with h5py.File(tmp_path / f"{present[0]}.hdf5", "r") as f:
        assert f["particle_features"].dtype == np.float32 and f["particle_features"].shape[1:] == (30, 4)
        assert f["jet_features"].dtype == np.float32 and f["jet_features"].shape[1:] == (4,)
        n_particles = f["jet_features"][:, 3]
    back = read_jetnet(tmp_path)
    assert back.class_names == tuple(present)
    order = np.argsort(batch.labels, kind="stable")  # the reader returns jets grouped by class
    expected = batch.select(order).sort_by_pt().pad_to(30)
    first = expected.labels == 0
    np.testing.assert_array_equal(n_particles, np.minimum(batch.n_constituents[batch.labels == 0], 30))
    np.testing.assert_array_equal(back.mask, expected.mask)
    np.testing.assert_allclose(back.pt, expected.pt, rtol=1e-5)
    np.testing.assert_allclose(back.eta, expected.eta, atol=1e-5)
    for got, want in zip(back.relative(), expected.relative()):  # phi only relative: JetNet has no jet phi
        np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_array_equal(back.jet_pt, expected.jet_pt)
    np.testing.assert_array_equal(back.jet_mass, expected.jet_mass)
    assert first.sum() == (back.labels == 0).sum()


def test_jetnet_single_file_writer_needs_one_class(tmp_path):
    batch = random_batch(6, 10, ("g", "q"))
    with pytest.raises(ValueError, match=r"mixed\.hdf5: the batch holds 2 classes"):
        write_jetnet(batch, tmp_path / "mixed.hdf5")
    gluons = batch.select(batch.labels == 0)
    write_jetnet(gluons, tmp_path / "g150.hdf5", n_particles=150)
    assert len(read_jetnet(tmp_path / "g150.hdf5", n_particles=150)) == len(gluons)


# -------------------------------------------------------------- Top tagging
@pytest.mark.parametrize("fmt", ["table", "fixed"])
def test_top_tagging_reads_public_layout(tmp_path, fmt):
    frame, p4 = top_frame(12)
    frame.to_hdf(tmp_path / "train.h5", key="table", format=fmt, mode="w")
    batch = read_top_tagging(tmp_path / "train.h5")
    total = p4.astype(np.float64).sum(axis=1)
    mass = np.sqrt(np.clip(total[:, 0] ** 2 - (total[:, 1:] ** 2).sum(axis=1), 0, None))
    assert batch.class_names == ("qcd", "top")
    np.testing.assert_array_equal(batch.labels, frame["is_signal_new"])
    np.testing.assert_allclose(batch.jet_pt, np.hypot(total[:, 1], total[:, 2]), rtol=1e-6)
    np.testing.assert_allclose(batch.jet_phi, np.arctan2(total[:, 2], total[:, 1]), atol=1e-6)
    np.testing.assert_allclose(batch.jet_mass, mass, rtol=1e-4)
    np.testing.assert_array_equal(batch.mask, p4[..., 0] > 0)
    np.testing.assert_allclose(batch.four_momenta(), p4, rtol=1e-5, atol=1e-4)


def test_top_tagging_n_constituents_keeps_the_first_slots(tmp_path):
    frame, p4 = top_frame(5)
    frame.to_hdf(tmp_path / "val.h5", key="table", format="table")
    batch = read_top_tagging(tmp_path / "val.h5", n_constituents=20)
    assert batch.max_constituents == 20
    np.testing.assert_allclose(batch.energy, p4[:, :20, 0], rtol=1e-6)
    with pytest.raises(ValueError, match=r"n_constituents must be in \[1, 200\]"):
        read_top_tagging(tmp_path / "val.h5", n_constituents=201)


def test_top_tagging_chunks_read_only_their_rows(tmp_path, monkeypatch):
    frame, _ = top_frame(23)
    frame.to_hdf(tmp_path / "test.h5", key="table", format="table")
    calls = []
    select = pd.HDFStore.select

    def recording_select(self, key, *args, start=None, stop=None, **kwargs):
        calls.append((start, stop))
        return select(self, key, *args, start=start, stop=stop, **kwargs)

    monkeypatch.setattr(pd.HDFStore, "select", recording_select)
    chunks = read_top_tagging(tmp_path / "test.h5", chunk_size=10)
    assert [len(b) for b in chunks] == [10, 10, 3]
    assert calls[-3:] == [(0, 10), (10, 20), (20, 23)]
    with read_top_tagging(tmp_path / "test.h5", chunk_size=10) as chunks:
        next(chunks)
        assert opened(tmp_path / "test.h5")
    assert not opened(tmp_path / "test.h5")  # stopping early closes the file


def test_top_tagging_writer_layout_and_round_trip(tmp_path):
    batch = random_batch(30, 230, ("qcd", "top"))
    truth = np.arange(120, dtype=np.float32).reshape(30, 4)
    write_top_tagging(batch, tmp_path / "train.h5", truth=truth, ttv=2)
    frame = pd.read_hdf(tmp_path / "train.h5", key="table")
    assert list(frame.columns) == TOP_COLUMNS
    assert set(frame.dtypes.iloc[:804]) == {np.dtype(np.float32)}
    assert frame["ttv"].dtype == np.int64 and frame["is_signal_new"].dtype == np.int64
    np.testing.assert_array_equal(frame["is_signal_new"], batch.labels)
    np.testing.assert_array_equal(frame["ttv"], 2)
    np.testing.assert_array_equal(frame[["truthE", "truthPX", "truthPY", "truthPZ"]].to_numpy(), truth)
    with h5py.File(tmp_path / "train.h5", "r") as f:  # pandas "table" format, as the public files
        assert "table/table" in f and "table/_i_table/index" in f
    e = frame[[f"E_{i}" for i in range(200)]].to_numpy()
    assert np.all(np.diff(np.hypot(frame[[f"PX_{i}" for i in range(200)]].to_numpy(),
                                   frame[[f"PY_{i}" for i in range(200)]].to_numpy()), axis=1) <= 1e-4)
    np.testing.assert_array_equal(e > 0, batch.sort_by_pt().pad_to(200).mask)  # truncated to the 200 hardest
    back = read_top_tagging(tmp_path / "train.h5")
    expected = batch.sort_by_pt().pad_to(200)
    np.testing.assert_allclose(back.four_momenta(), expected.four_momenta(), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(back.labels, batch.labels)


def test_top_tagging_writer_maps_labels_by_class_name(tmp_path):
    batch = random_batch(10, 5, ("top", "qcd"))  # label 0 means top here
    write_top_tagging(batch, tmp_path / "t.h5")
    np.testing.assert_array_equal(pd.read_hdf(tmp_path / "t.h5", key="table")["is_signal_new"], batch.labels == 0)
    with pytest.raises(ValueError, match=r"x\.h5: class names \['gluon', 'quark'\] cannot be written"):
        write_top_tagging(random_batch(4, 5, ("gluon", "quark")), tmp_path / "x.h5")
    with pytest.raises(ValueError, match=r"x\.h5: 'truth' has shape \(2, 4\); expected \(10, 4\)"):
        write_top_tagging(batch, tmp_path / "x.h5", truth=np.zeros((2, 4)))


# ------------------------------------------------------------- quark/gluon
def test_quark_gluon_kinematics_use_rapidity_and_pdg_masses(tmp_path):
    x, y = qg_arrays(9, 25)
    np.savez_compressed(tmp_path / "QG_jets.npz", X=x, y=y)
    batch = read_quark_gluon(tmp_path / "QG_jets.npz")
    pt, rapidity, phi, pid = np.moveaxis(x, -1, 0)
    mt = np.sqrt(pt**2 + pids2ms(pid) ** 2)
    p4 = np.stack([mt * np.cosh(rapidity), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(rapidity)], axis=-1)
    total = p4.sum(axis=1)
    assert batch.class_names == ("gluon", "quark")
    np.testing.assert_array_equal(batch.labels, y)
    np.testing.assert_array_equal(batch.pid, pid)
    np.testing.assert_array_equal(batch.charge, pids2chrgs(pid).astype(np.float32))
    np.testing.assert_allclose(batch.energy, p4[..., 0], rtol=1e-6)
    np.testing.assert_allclose(batch.four_momenta(), p4, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch.jet_pt, np.hypot(total[:, 1], total[:, 2]), rtol=1e-6)
    np.testing.assert_allclose(batch.jet_mass, np.sqrt(total[:, 0] ** 2 - (total[:, 1:] ** 2).sum(axis=1)), rtol=1e-4)


def test_quark_gluon_directory_glob_and_list(tmp_path):
    for i, (name, width) in enumerate([("QG_jets.npz", 12), ("QG_jets_1.npz", 20), ("QG_jets_2.npz", 7)]):
        np.savez(tmp_path / name, X=qg_arrays(4 + i, width, seed=i)[0], y=qg_arrays(4 + i, width, seed=i)[1])
    (tmp_path / "notes.npz").write_bytes(b"not a quark/gluon file")
    batch = read_quark_gluon(tmp_path)
    assert len(batch) == 4 + 5 + 6 and batch.max_constituents == 20  # padded to the widest file
    by_glob = read_quark_gluon(str(tmp_path / "QG_jets*.npz"))
    by_list = read_quark_gluon([tmp_path / "QG_jets.npz", tmp_path / "QG_jets_1.npz", tmp_path / "QG_jets_2.npz"])
    assert_batches_equal(batch, by_glob)
    assert_batches_equal(batch, by_list)
    assert_batches_equal(read_quark_gluon(tmp_path, start=6, max_jets=5), batch.select(slice(6, 11)))  # spans files
    np.testing.assert_array_equal(batch.pid[:4, :12], qg_arrays(4, 12, seed=0)[0][..., 3])
    with pytest.raises(FileNotFoundError, match=r"nothing-\*\.npz: the pattern matches no files"):
        read_quark_gluon(str(tmp_path / "nothing-*.npz"))


def test_quark_gluon_fortran_ordered_arrays_read_the_same(tmp_path):
    x, y = qg_arrays(12, 9)
    np.savez(tmp_path / "QG_jets_c.npz", X=x, y=y)
    np.savez(tmp_path / "QG_jets_f.npz", X=np.asfortranarray(x), y=y)
    assert_batches_equal(next(read_quark_gluon(tmp_path / "QG_jets_f.npz", chunk_size=5)),
                         read_quark_gluon(tmp_path / "QG_jets_c.npz", max_jets=5))


def test_quark_gluon_writer_layout_and_round_trip(tmp_path):
    batch = random_batch(25, 30, ("gluon", "quark"))
    write_quark_gluon(batch, tmp_path / "QG_jets.npz")
    with np.load(tmp_path / "QG_jets.npz") as data:
        assert sorted(data.files) == ["X", "y"]
        x, y = data["X"], data["y"]
    assert x.dtype == np.float64 and x.shape == (25, batch.n_constituents.max(), 4)
    np.testing.assert_array_equal(y, batch.labels)
    expected = batch.sort_by_pt().pad_to(x.shape[1])
    energy, _, _, pz = expected.four_momenta()[expected.mask].T
    np.testing.assert_allclose(x[..., 1][expected.mask], 0.5 * np.log((energy + pz) / (energy - pz)), atol=2e-4)
    back = read_quark_gluon(tmp_path / "QG_jets.npz")
    np.testing.assert_array_equal(back.pid, expected.pid)
    np.testing.assert_array_equal(back.mask, expected.mask)
    np.testing.assert_allclose(back.four_momenta(), expected.four_momenta(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(back.jet_mass, batch.jet_mass, rtol=1e-3)


def test_quark_gluon_writer_needs_pid(tmp_path):
    batch = random_batch(3, 4, ("gluon", "quark"))
    no_pid = JetBatch.from_ptetaphie(batch.pt, batch.eta, batch.phi, batch.energy, labels=batch.labels)
    with pytest.raises(ValueError, match=r"QG\.npz: the batch has no 'pid'"):
        write_quark_gluon(no_pid, tmp_path / "QG.npz")
    assert not (tmp_path / "QG.npz").exists()


# ----------------------------------------------------- shared behaviour
def write_jetnet_by_hand(path, n_jets, seed=RNG_SEED):
    particles, jets = jetnet_arrays(n_jets, seed=seed)
    write_h5(path / "q.hdf5", particle_features=particles, jet_features=jets)
    return path / "q.hdf5", read_jetnet


def write_top_by_hand(path, n_jets, seed=RNG_SEED):
    top_frame(n_jets, seed)[0].to_hdf(path / "train.h5", key="table", format="table")
    return path / "train.h5", read_top_tagging


def write_qg_by_hand(path, n_jets, seed=RNG_SEED):
    x, y = qg_arrays(n_jets, 18, seed)
    np.savez_compressed(path / "QG_jets.npz", X=x, y=y)
    return path / "QG_jets.npz", read_quark_gluon


FORMATS = pytest.mark.parametrize("make", [write_jetnet_by_hand, write_top_by_hand, write_qg_by_hand],
                                  ids=["jetnet", "top", "qg"])


@FORMATS
def test_chunks_equal_one_shot_read(tmp_path, make):
    path, read = make(tmp_path, 70)
    whole = read(path)
    chunks = read(path, chunk_size=16)
    assert isinstance(chunks, JetChunks) and chunks.n_rows == 70
    parts = list(chunks)
    assert [len(p) for p in parts] == [16, 16, 16, 16, 6]
    assert_batches_equal(JetBatch.concatenate(parts), whole)
    assert_batches_equal(read(path, max_jets=20), whole.select(slice(0, 20)))
    assert_batches_equal(JetBatch.concatenate(read(path, chunk_size=16, max_jets=20)), whole.select(slice(0, 20)))
    assert len(read(path, max_jets=0)) == 0
    assert_batches_equal(read(path, start=30, max_jets=25), whole.select(slice(30, 55)))
    assert_batches_equal(JetBatch.concatenate(read(path, start=30, chunk_size=16)), whole.select(slice(30, None)))
    assert len(read(path, start=70)) == 0
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        read(path, chunk_size=0)
    with pytest.raises(ValueError, match="start must be a non-negative integer, got -1"):
        read(path, start=-1)


def corrupt_jetnet(path, jet, kind):
    with h5py.File(path, "r+") as f:
        particles = f["particle_features"][:]
        if kind == "nan":
            particles[jet, 0, 0] = np.nan
        else:
            particles[jet] = 0
        f["particle_features"][...] = particles


def corrupt_top(path, jet, kind):
    frame = pd.read_hdf(path, key="table")
    columns = [c for c in TOP_COLUMNS[:800]]
    frame.loc[frame.index[jet], columns] = np.inf if kind == "nan" else 0.0
    frame.to_hdf(path, key="table", format="table", mode="w")


def corrupt_qg(path, jet, kind):
    with np.load(path) as data:
        x, y = data["X"], data["y"]
    x[jet] = np.nan if kind == "nan" else 0.0
    np.savez_compressed(path, X=x, y=y)


BAD_JETS = pytest.mark.parametrize(
    "make, corrupt, field",
    [  # (raw field, where the NaN of row 17 is, what defines constituents)
        (write_jetnet_by_hand, corrupt_jetnet, ("'particle_features'", r"'particle_features'\[17, 0, 0\] \(etarel of "
                                                r"particle 0\) = nan", r"'particle_features\[\.\.\., 3\] \(mask\)'")),
        (write_top_by_hand, corrupt_top, ("'E_0..PZ_199'", r"column 'E_0' = inf",
                                          r"'E_0..PZ_199 \(all-zero slots are padding\)'")),
        (write_qg_by_hand, corrupt_qg, ("'X'", r"'X'\[17, 0, 0\] \(pt of constituent 0\) = nan",
                                        r"'X \(all-zero rows are padding\)'")),
    ],
    ids=["jetnet", "top", "qg"],
)


@BAD_JETS
def test_bad_jets_raise_naming_file_field_and_row(tmp_path, make, corrupt, field):
    path, read = make(tmp_path, 30)
    corrupt(path, 17, "nan")
    with pytest.raises(FileFormatError, match=rf"{re.escape(str(path))}: non-finite values \(NaN or inf\) in "
                                              rf"{field[0]} for 1 jets, first at row 17: {field[1]}; expected finite"):
        read(path)
    with pytest.raises(FileFormatError, match=r"first at row 17"):  # rows are counted in the file
        read(path, start=12)
    corrupt(path, 17, "zero")
    corrupt(path, 4, "zero")
    with pytest.raises(FileFormatError, match=rf"{path.name}: no constituents in {field[2]} for 1 jets, first at "
                                              r"row 4; expected at least one constituent"):
        list(read(path, chunk_size=10))  # chunks are read, and checked, while iterating


@BAD_JETS
def test_skip_bad_drops_and_counts(tmp_path, make, corrupt, field):
    path, read = make(tmp_path, 30)
    whole = read(path)
    corrupt(path, 3, "nan")
    corrupt(path, 25, "nan")
    corrupt(path, 11, "zero")
    with pytest.warns(SkippedJetsWarning, match=r"dropped 3 of 30 jets read") as record:
        batch = read(path, skip_bad=True)
    keep = np.setdiff1d(np.arange(30), [3, 11, 25])
    assert_batches_equal(batch, whole.select(keep))
    counts = record[0].message.counts[str(path)]
    assert sorted(counts.values()) == [1, 2]
    assert record[0].filename == __file__  # the warning points at the caller
    chunks = read(path, chunk_size=8, skip_bad=True)
    with pytest.warns(SkippedJetsWarning) as chunk_record:
        assert_batches_equal(JetBatch.concatenate(list(chunks)), batch)
    assert chunks.skipped == record[0].message.counts
    assert chunk_record[0].filename == __file__


def test_clean_files_give_no_skip_warning(tmp_path):
    path, read = write_qg_by_hand(tmp_path, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read(path, skip_bad=True)


@FORMATS
def test_missing_and_corrupt_files(tmp_path, make):
    path, read = make(tmp_path, 10)
    with pytest.raises(FileNotFoundError, match=r"absent\.\w+: no such file; expected"):
        read(path.with_name("absent" + path.suffix))
    truncate(path)
    with pytest.raises(FileFormatError, match=rf"{re.escape(str(path))}: cannot read .*truncated or corrupt"):
        read(path)
    path.write_bytes(b"\x89HDF garbage" * 100)
    with pytest.raises(FileFormatError, match=rf"{path.name}: cannot read .*truncated or corrupt"):
        read(path)


def test_jetnet_missing_dataset_and_wrong_shapes(tmp_path):
    particles, jets = jetnet_arrays(6)
    write_h5(tmp_path / "g.hdf5", particle_features=particles)
    with pytest.raises(FileFormatError,
                       match=r"g\.hdf5: dataset 'jet_features' missing; found \['particle_features'\]"):
        read_jetnet(tmp_path)
    write_h5(tmp_path / "g.hdf5", particle_features=particles[..., :3], jet_features=jets)
    with pytest.raises(FileFormatError, match=r"g\.hdf5: 'particle_features' has shape \(6, 30, 3\); expected "
                                              r"\[N, M, 4\] with features \(etarel, phirel, ptrel, mask\)"):
        read_jetnet(tmp_path)
    write_h5(tmp_path / "g.hdf5", particle_features=particles, jet_features=jets[:5])
    with pytest.raises(FileFormatError, match=r"g\.hdf5: 'jet_features' has shape \(5, 4\); expected \[N, 4\]"):
        read_jetnet(tmp_path)
    particles[2, 0, 3] = 0.5
    write_h5(tmp_path / "g.hdf5", particle_features=particles, jet_features=jets)
    with pytest.raises(FileFormatError, match=r"g\.hdf5: 'particle_features\[\.\.\., 3\] \(mask\)' is invalid in "
                                              r"1 jets, first at row 2; expected 0 or 1"):
        read_jetnet(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"w\.hdf5: no such file; expected the JetNet file of class 'w'"):
        read_jetnet(tmp_path, classes=["g", "w"])


def test_top_tagging_missing_key_columns_and_bad_labels(tmp_path):
    frame, _ = top_frame(6)
    frame.to_hdf(tmp_path / "train.h5", key="jets", format="table")
    with pytest.raises(FileFormatError, match=r"train\.h5: key 'table' missing; found keys \['/jets'\]"):
        read_top_tagging(tmp_path / "train.h5")
    frame["E_0"].to_hdf(tmp_path / "train.h5", key="table", mode="w")
    with pytest.raises(FileFormatError, match=r"train\.h5: key 'table' holds a Series; expected a DataFrame"):
        read_top_tagging(tmp_path / "train.h5")
    frame.drop(columns=["PX_3", "is_signal_new"]).to_hdf(tmp_path / "train.h5", key="table", mode="w")
    with pytest.raises(FileFormatError, match=r"train\.h5: 2 columns missing \('PX_3', 'is_signal_new'\); "
                                              r"expected the 806 columns E_0"):
        read_top_tagging(tmp_path / "train.h5")
    frame["is_signal_new"] = 2
    frame.to_hdf(tmp_path / "train.h5", key="table", mode="w")
    with pytest.raises(FileFormatError, match=r"train\.h5: 'is_signal_new' is invalid in 6 jets, first at row 0; "
                                              r"expected 1 \(top\) or 0 \(QCD\)"):
        read_top_tagging(tmp_path / "train.h5")


def test_quark_gluon_missing_arrays_shapes_labels_and_pids(tmp_path):
    x, y = qg_arrays(5, 8)
    path = tmp_path / "QG_jets.npz"
    np.savez(path, X=x)
    with pytest.raises(FileFormatError,
                       match=r"QG_jets\.npz: array 'y' missing; found \['X'\]; expected 'X' \[N, M, 4\]"):
        read_quark_gluon(path)
    np.savez(path, X=x[..., :3], y=y)
    with pytest.raises(FileFormatError, match=r"QG_jets\.npz: 'X' has shape \(5, 8, 3\); expected \[N, M, 4\] with "
                                              r"columns \(pt, y, phi, pid\)"):
        read_quark_gluon(path)
    np.savez(path, X=x, y=y[:4])
    with pytest.raises(FileFormatError, match=r"QG_jets\.npz: 'y' has shape \(4,\); expected \[N\] labels"):
        read_quark_gluon(path)
    np.savez(path, X=x, y=np.full(5, 0.5))
    with pytest.raises(FileFormatError, match=r"QG_jets\.npz: 'y' is invalid in 5 jets, first at row 0; expected 1 "
                                              r"\(quark\) or 0 \(gluon\)"):
        read_quark_gluon(path)
    x[3, 0, 3] = 99999
    np.savez(path, X=x, y=y)
    with pytest.raises(FileFormatError, match=r"'X\[\.\.\., 3\] \(pid\)' is invalid in 1 jets, first at row 3; "
                                              r"expected PDG ids in EnergyFlow's particle table, not \[99999\]"):
        read_quark_gluon(path)


def test_quark_gluon_corrupt_compressed_data_is_reported_when_read(tmp_path):
    x, y = qg_arrays(200, 40)
    path = tmp_path / "QG_jets.npz"
    np.savez_compressed(path, X=x, y=y)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("X.npy")
    data = bytearray(path.read_bytes())
    end_of_x = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size
    data[end_of_x - 300:end_of_x - 292] = bytes(8)  # damages the last rows: found by the CRC check
    path.write_bytes(bytes(data))
    chunks = read_quark_gluon(path, chunk_size=50)  # the layout is intact: found while reading
    with pytest.raises(FileFormatError, match=r"QG_jets\.npz: cannot read rows \d+:\d+; the file looks truncated or "
                                              r"corrupt"):
        list(chunks)


def test_quark_gluon_writer_keeps_phi_next_to_the_jet_axis(tmp_path):
    """The public QG files do not wrap phi: a jet at phi ~ pi has constituents on both sides of pi."""
    from jettf.io import read_quark_gluon, write_quark_gluon

    phi = np.array([[np.pi - 0.05, -np.pi + 0.05, np.pi - 0.1]])
    batch = JetBatch.from_ptetaphie(
        pt=np.array([[50.0, 40.0, 30.0]]), eta=np.zeros((1, 3)), phi=phi, energy=np.array([[50.0, 40.0, 30.0]]),
        pid=np.array([[211, -211, 22]]), labels=[1], class_names=("gluon", "quark"),
    )
    path = write_quark_gluon(batch, tmp_path / "QG_jets.npz")
    stored = np.load(path)["X"][0, :, 2]
    assert np.ptp(stored) < 0.2  # no jump of 2 pi across the jet
    back = read_quark_gluon(path)
    np.testing.assert_allclose(np.sort(back.phi[0]), np.sort(batch.phi[0]), atol=1e-6)


# ------------------------------------------- values that cannot be physical, empty files
def written_file(tmp_path, fmt, n_jets=12):
    """A file written by jettf.io's own writer, and its reader."""
    if fmt == "jetnet":
        return write_jetnet(random_batch(n_jets, 10, ("w",)), tmp_path / "w.hdf5")[0], read_jetnet
    if fmt == "top":
        return write_top_tagging(random_batch(n_jets, 10, ("qcd", "top")), tmp_path / "train.h5"), read_top_tagging
    return write_quark_gluon(random_batch(n_jets, 10, ("gluon", "quark")), tmp_path / "QG_jets.npz"), read_quark_gluon


def set_value(path, field, index, value):
    """Overwrite one stored value: an HDF5 dataset element, a Top Tagging cell (row, column) or an npz element."""
    if path.suffix == ".hdf5":
        with h5py.File(path, "r+") as f:
            f[field][index] = value
    elif path.suffix == ".h5":
        frame = pd.read_hdf(path, key="table")
        frame.loc[frame.index[index], field] = value
        frame.to_hdf(path, key="table", format="table", mode="w")
    else:
        with np.load(path) as data:
            arrays = dict(data)
        arrays[field][index] = value
        np.savez_compressed(path, **arrays)


UNPHYSICAL = pytest.mark.parametrize(
    "fmt, field, index, value, reason, where, expected",
    [
        ("jetnet", "particle_features", (5, 0, 2), -0.01, "negative or zero ptrel of a particle in 'particle_features'",
         r"'particle_features'\[5, 0, 2\] \(ptrel of particle 0\) = -0\.01", "ptrel > 0 for particles with mask 1"),
        ("jetnet", "jet_features", (5, 0), -500.0, "negative or zero jet pt in 'jet_features'",
         r"'jet_features'\[5, 0\] \(pt\) = -500", "jet pt > 0 GeV"),
        ("jetnet", "jet_features", (5, 2), np.inf, "non-finite values (NaN or inf) in 'jet_features'",
         r"'jet_features'\[5, 2\] \(mass\) = inf", "finite numbers"),
        ("top", "E_1", 5, -3.0, "negative or zero constituent energy in 'E_0..E_199'",
         r"column 'E_1' = -3", r"E > 0 GeV for constituents; padding is all zero"),
        ("top", "PY_0", 5, np.nan, "non-finite values (NaN or inf) in 'E_0..PZ_199'",
         r"column 'PY_0' = nan", "finite numbers"),
        ("qg", "X", (5, 0, 0), -2.0, "negative or zero constituent pt in 'X'",
         r"'X'\[5, 0, 0\] \(pt of constituent 0\) = -2", "pt > 0 GeV for constituents; padding rows are all zero"),
        ("qg", "X", (5, 1, 2), np.inf, "non-finite values (NaN or inf) in 'X'",
         r"'X'\[5, 1, 2\] \(phi of constituent 1\) = inf", "finite numbers"),
    ],
    ids=["jetnet-ptrel", "jetnet-jet-pt", "jetnet-inf", "top-E", "top-nan", "qg-pt", "qg-inf"],
)


@UNPHYSICAL
def test_unphysical_values_raise_naming_file_row_and_field(tmp_path, fmt, field, index, value, reason, where,
                                                           expected):
    path, read = written_file(tmp_path, fmt)
    whole = read(path)
    set_value(path, field, index, value)
    with pytest.raises(FileFormatError, match=rf"^{re.escape(str(path))}: {re.escape(reason)} for 1 jets, first at "
                                              rf"row 5: {where}; expected {expected}"):
        read(path)
    with pytest.raises(ValueError, match="first at row 5"):  # in chunks too, rows counted in the file
        list(read(path, chunk_size=4, start=2))
    with pytest.warns(SkippedJetsWarning, match=r"dropped 1 of 12 jets") as record:
        kept = read(path, skip_bad=True)
    assert record[0].message.counts == {str(path): {reason: 1}}
    assert_batches_equal(kept, whole.select(np.setdiff1d(np.arange(12), [5])))


@pytest.mark.parametrize("fmt", ["top", "qg"])
def test_a_negative_constituent_is_bad_not_padding(tmp_path, fmt):
    """The last constituent of a jet made negative: an error, where it used to be read as padding."""
    path, read = written_file(tmp_path, fmt)
    whole = read(path)
    last = int(whole.n_constituents[3]) - 1
    field, index = ((f"E_{last}", 3) if fmt == "top" else ("X", (3, last, 0)))
    set_value(path, field, index, -1.0)
    with pytest.raises(FileFormatError, match=rf"first at row 3: .*{last}.* = -1; expected"):
        read(path)
    if fmt == "top":  # an energy of exactly zero with momentum is not padding either
        set_value(path, field, index, 0.0)
        with pytest.raises(FileFormatError, match=rf"column 'E_{last}' = 0; expected E > 0"):
            read(path)


def test_files_without_jets_are_named(tmp_path):
    write_h5(tmp_path / "g.hdf5", particle_features=np.zeros((0, 30, 4), np.float32),
             jet_features=np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(tmp_path / 'g.hdf5'))}: the file holds no jets "
                                         r"\('particle_features' has 0 rows\); expected at least one jet"):
        read_jetnet(tmp_path)
    with open(tmp_path / "QG_jets.npz", "wb") as handle:
        np.savez_compressed(handle, X=np.zeros((0, 5, 4)), y=np.zeros(0))
    with pytest.raises(ValueError, match=r"QG_jets\.npz: the file holds no jets \('X' has 0 rows\)"):
        read_quark_gluon(tmp_path)
    with pytest.raises(ValueError, match=r"QG_jets\.npz: the file holds no jets"):  # also when counting rows
        read_quark_gluon(tmp_path, chunk_size=10)
    empty = pd.DataFrame(np.zeros((0, 806)), columns=TOP_COLUMNS)
    empty.to_hdf(tmp_path / "fixed.h5", key="table", format="fixed")
    with pytest.raises(ValueError, match=r"fixed\.h5: the file holds no jets \(key 'table' has 0 rows\)"):
        read_top_tagging(tmp_path / "fixed.h5")
    empty.to_hdf(tmp_path / "table.h5", key="table", format="table")  # pandas writes no table for zero rows
    with pytest.raises(ValueError, match=r"table\.h5: the file holds no jets \(an empty HDFStore"):
        read_top_tagging(tmp_path / "table.h5")
    with pytest.raises(ValueError, match=r"test\.h5: no jets to write"):
        write_top_tagging(random_batch(4, 5, ("qcd", "top")).select(np.zeros(4, bool)), tmp_path / "test.h5")


def test_writers_are_reproducible_and_carry_the_generator_mark(tmp_path):
    """The same jets written twice, seconds apart, give the same bytes (no HDF5 or zip timestamps); the
    generator's settings ride inside the file and public-style files carry none."""
    import time

    from jettf.io import generated_settings

    mark = {"sample": "test", "seed": 3}

    def write_all(folder, generated):
        folder.mkdir()
        return [write_top_tagging(random_batch(6, 5, ("qcd", "top")), folder / "train.h5", generated=generated),
                write_quark_gluon(random_batch(6, 5, ("gluon", "quark")), folder / "QG_jets.npz", generated=generated),
                *write_jetnet(random_batch(6, 5, ("w",)), folder, generated=generated)]

    first = write_all(tmp_path / "a", mark)
    time.sleep(2.1)  # zip times have a 2 s resolution, HDF5 times 1 s
    second = write_all(tmp_path / "b", mark)
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name
        assert generated_settings(a) == mark
    plain = write_all(tmp_path / "c", None)
    assert [generated_settings(p) for p in plain] == [None, None, None]
    # the public loaders still read them
    assert pd.read_hdf(first[0], key="table").shape == (6, 806)
    with np.load(first[1]) as data:
        assert data["X"].shape[0] == 6 and data["y"].shape == (6,)
    with h5py.File(first[2], "r") as f:
        assert f["particle_features"].shape == (6, 30, 4)
