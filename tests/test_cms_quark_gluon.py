"""003's CMS E2E quark/gluon images: file layout round trips, reader errors, convention checks on hand-made
images, jet-view centring, and a tiny generated sample (seconds)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from jettf.detector import CMS, e2e
from jettf.detector.calorimeter import Cells
from jettf.io import (FileFormatError, SkippedJetsWarning, generated_settings, read_cms_quark_gluon,
                      write_cms_quark_gluon)
from jettf.io.cms_quark_gluon import check_conventions

NPIX = 125


def _rows(dense: np.ndarray) -> e2e.PixelRows:
    """CSR rows of dense [N, H, W, C] images."""
    n, h, w, c = dense.shape
    flat = dense.reshape(n, h * w, c)
    jet, pixel = np.nonzero(np.abs(flat).sum(-1))
    offsets = np.searchsorted(jet, np.arange(n + 1)).astype(np.int64)
    return e2e.PixelRows(offsets, pixel.astype(np.int32), flat[jet, pixel].astype(np.float32), (h, w, c))


def hand_made(n: int, seed: int = 0) -> tuple:
    """Images as 003 describes them (isolated track pixels, ECAL 3x3 showers, HCAL 5x5 blocks; gluons with more
    tracks), and labels: :func:`tfds_builders.testing.synthetic_e2e_images`."""
    from tfds_builders.testing import synthetic_e2e_images

    return synthetic_e2e_images(n, seed)


def _write(path, images, y, generated=None, **extra_images):
    n = len(y)
    sets = {"X_jets": _rows(images), **{k: _rows(v) for k, v in extra_images.items()}}
    pt = np.linspace(80.0, 150.0, n)
    return write_cms_quark_gluon(path, sets, y, pt, pt / 10, generated=generated,
                                 extras={"jet_pt": np.stack([pt, pt / 2], 1)})


@pytest.mark.parametrize("suffix", [".hdf5", ".parquet"])
def test_layout_round_trip(tmp_path, suffix):
    x, y = hand_made(40)
    gen = np.zeros((40, NPIX, NPIX, 2), np.float32)
    gen[:, 62, 62, 1] = np.arange(40) + 1.0
    path = _write(tmp_path / f"quark-gluon_data-set_n40{suffix}", x, y, generated={"sample": "test"}, X_jets_gen=gen)
    out = read_cms_quark_gluon(path)
    assert out.images.dtype == np.float32 and out.images.shape == (40, NPIX, NPIX, 3)
    np.testing.assert_array_equal(out.images, x)
    np.testing.assert_array_equal(out.labels, y)
    np.testing.assert_allclose(out.pt, np.linspace(80.0, 150.0, 40), rtol=1e-6)
    assert out.class_names == ("gluon", "quark") and out.channels == ("tracks", "ecal", "hcal")
    assert generated_settings(path) == {"sample": "test"}
    np.testing.assert_array_equal(read_cms_quark_gluon(path, field="X_jets_gen").images, gen)
    chunks = list(read_cms_quark_gluon(path, chunk_size=16, start=4, max_jets=30))
    assert [len(c) for c in chunks] == [16, 14]
    np.testing.assert_array_equal(np.concatenate([c.images for c in chunks]), x[4:34])
    if suffix == ".hdf5":  # the public loaders' view: h5py datasets with the public names and shapes
        with h5py.File(path, "r") as f:
            assert f["X_jets"].shape == (40, NPIX, NPIX, 3) and f["y"].shape == (40,)
    else:  # parquet rows hold X_jets channels first, as the public parquet files
        import pyarrow.parquet as pq

        row = pq.read_table(path, columns=["X_jets"]).slice(0, 1).to_pylist()[0]["X_jets"]
        np.testing.assert_array_equal(np.asarray(row, np.float32), np.moveaxis(x[0], -1, 0))


def test_public_layout_without_extras(tmp_path):
    x, y = hand_made(40)
    path = tmp_path / "quark-gluon_data-set_n40.hdf5"
    with h5py.File(path, "w") as f:  # what the public file holds: four datasets, no attributes
        f["X_jets"], f["y"], f["pt"], f["m0"] = x, y.astype(np.float32), np.full(40, 90.0), np.full(40, 9.0)
    out = read_cms_quark_gluon(path)
    assert out.jets is None and out.centers is None and generated_settings(path) is None
    with pytest.raises(FileFormatError, match=r"'X_event_offsets'.*written by python -m jettf.generate"):
        read_cms_quark_gluon(path, field="X_event")


def test_reader_errors_name_file_row_field(tmp_path):
    x, y = hand_made(40)
    bad = x.copy()
    bad[7, 60, 61, 0] = np.nan
    path = _write(tmp_path / "nan.hdf5", bad, y)
    with pytest.raises(FileFormatError, match=r"nan\.hdf5: non-finite .*'X_jets'.* row 7.*'X_jets'\[7, 60, 61, 0\]"):
        read_cms_quark_gluon(path)
    with pytest.warns(SkippedJetsWarning, match="dropped 1 of 40"):
        assert len(read_cms_quark_gluon(path, skip_bad=True)) == 39
    neg = x.copy()
    neg[3, 50, 50, 0] = -1.0
    path = _write(tmp_path / "negative.parquet", neg, y)
    with pytest.raises(FileFormatError, match=r"negative\.parquet: negative pT pixels .* row 3.*tracks channel"):
        read_cms_quark_gluon(path)
    path = tmp_path / "shape.hdf5"
    with h5py.File(path, "w") as f:
        f["X_jets"], f["y"], f["pt"], f["m0"] = x[:, :64], y, np.ones(40), np.ones(40)
    with pytest.raises(FileFormatError, match=r"shape\.hdf5: 'X_jets' has shape \(40, 64, 125, 3\); expected"):
        read_cms_quark_gluon(path)
    path = tmp_path / "labels.hdf5"
    with h5py.File(path, "w") as f:
        f["X_jets"], f["y"], f["pt"], f["m0"] = x, np.where(y == 1, 2, 0), np.ones(40), np.ones(40)
    with pytest.raises(FileFormatError, match=r"labels\.hdf5: 'y' is invalid in 20 jets, first at row 1"):
        read_cms_quark_gluon(path, check=False)
    with h5py.File(tmp_path / "missing.hdf5", "w") as f:
        f["X_jets"] = x
    with pytest.raises(FileFormatError, match=r"missing\.hdf5: dataset\(s\) \['y', 'pt', 'm0'\] missing"):
        read_cms_quark_gluon(tmp_path / "missing.hdf5")
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [np.moveaxis(x[i], -1, 0).tolist() for i in range(2)]
    rows[1][2] = rows[1][2][:124]  # the HCAL plane of row 1 lacks a line
    pq.write_table(pa.table({"X_jets": rows, "y": [0.0, 1.0], "pt": [90.0, 95.0], "m0": [9.0, 8.0]}),
                   tmp_path / "ragged.parquet")
    with pytest.raises(FileFormatError, match=r"ragged\.parquet: column 'X_jets' has lists of length \[124, 125\] at "
                                              r"nesting level 2; expected shape \[3, 125, 125\]"):
        read_cms_quark_gluon(tmp_path / "ragged.parquet", check=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no CMS E2E files"):
        read_cms_quark_gluon(tmp_path / "empty")


def test_convention_checks_on_hand_made_images(tmp_path):
    x, y = hand_made(80)
    figures = check_conventions(x, y, "f.hdf5")
    assert figures["isolated_share"][0] == 1.0 and figures["block_share"][2] == 1.0
    assert figures["track_pixels"]["quark_label"] < figures["track_pixels"]["other"]
    for order in ((1, 0, 2), (0, 2, 1), (2, 1, 0)):
        with pytest.raises(FileFormatError, match=r"f\.hdf5: 'X_jets' channels do not look like \(tracks, ECAL"):
            check_conventions(x[..., order], y, "f.hdf5")
    with pytest.raises(FileFormatError, match=r"'y': jets with y = 1 have .* does not look like quark"):
        check_conventions(x, 1 - y, "f.hdf5")
    check_conventions(x, 1 - y, "f.hdf5", quark_label=0)
    path = _write(tmp_path / "swapped.hdf5", x[..., (1, 0, 2)], y)  # the reader runs the check on each file
    with pytest.raises(FileFormatError, match="channels do not look like"):
        read_cms_quark_gluon(path)
    assert len(read_cms_quark_gluon(path, check=False)) == 80
    path = _write(tmp_path / "flipped.parquet", x, 1 - y)
    with pytest.raises(FileFormatError, match="does not look like quark"):
        read_cms_quark_gluon(path)
    np.testing.assert_array_equal(read_cms_quark_gluon(path, quark_label=0).labels, y)


def _cells(event, ieta, iphi, energy):
    event, ieta, iphi = (np.asarray(a, np.int64) for a in (event, ieta, iphi))
    return Cells(np.zeros(len(event)), event, ieta, iphi, np.asarray(energy, float), ieta * 0.087, iphi * 0.0)


def test_jet_view_centred_on_hottest_tower_within_9x9():
    # Event 0: jet axis in tower (2, 10); a 20 GeV tower at (5, 13) inside the 9x9 window and a hotter one
    # outside it. Event 1: jet at the phi edge (tower 71); the hottest tower wraps around to iphi 1.
    cells = _cells([0, 0, 0, 1, 1], [5, 2, 9, 0, -1], [13, 10, 10, 71, 1], [20.0, 5.0, 50.0, 3.0, 8.0])
    jet_eta = np.array([2.5 * 0.087, 0.5 * 0.087])
    jet_phi = np.array([-np.pi + 10.5 * 2 * np.pi / 72, -np.pi + 71.5 * 2 * np.pi / 72])
    row, col = e2e.jet_window_centers(cells, CMS, [0, 1], jet_eta, jet_phi)
    np.testing.assert_array_equal(row, [5 * 5 + 2, -1 * 5 + 2])
    np.testing.assert_array_equal(col, [13 * 5 + 2, 1 * 5 + 2])
    # No tower in the window: the tower of the jet axis itself.
    row, col = e2e.jet_window_centers(cells, CMS, [0], [20 * 0.087 + 0.01], [-np.pi + 40.5 * 2 * np.pi / 72])
    assert (row[0], col[0]) == (20 * 5 + 2, 40 * 5 + 2)
    # The view: the centre tower's 5x5 block sits on the centre pixels; a track across the phi edge wraps.
    pixels = e2e.Pixels(np.array([0] * 25 + [0]), np.r_[np.repeat(np.arange(25, 30), 5), 27],
                        np.r_[np.tile(np.arange(65, 70), 5), 359], np.r_[np.full(25, 2), 0].astype(np.int8),
                        np.r_[np.full(25, 0.8), 4.0])
    view = e2e.jet_views(pixels, CMS, [0], np.array([27]), np.array([67]), 3).dense()[0]
    np.testing.assert_allclose(view[60:65, 60:65, 2], 0.8)
    assert view[..., 2].sum() == pytest.approx(20.0)
    view = e2e.jet_views(pixels, CMS, [0], np.array([27]), np.array([2]), 3).dense()[0]
    assert view[62, 62 - 3, 0] == 4.0  # iphi 359 is 3 crystals below iphi 2


def test_window_mask():
    mask = e2e.window_mask(np.array([[[140, 0], [20, 180]]]), (280, 360))
    assert mask.shape == (1, 280, 360) and mask.sum() == 125 * 125 + (20 + 63) * 125
    assert mask[0, 140, 359] and mask[0, 140, 62] and not mask[0, 140, 63]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from jettf.generate import generate_sample

    out = tmp_path_factory.mktemp("cms_qg")
    files = generate_sample("cms_quark_gluon", 6, out, seed=3, shard_jets=3, progress=False)
    return out, files


def test_generated_sample(generated):
    out, files = generated
    assert [p.name for p in files] == ["quark-gluon_data-set_n12.hdf5", "quark-gluon_data-set_n12.parquet"]
    jets = read_cms_quark_gluon(files[0], check=False)
    assert np.bincount(jets.labels).tolist() == [6, 6]
    assert (jets.pt > 70).all() and (np.abs(jets.jets[:, :, 1]) < 1.8).all()
    assert (jets.jets[:, 0, 0] >= jets.jets[:, 1, 0]).all()
    np.testing.assert_allclose(jets.pt, jets.jets[:, 0, 0], rtol=1e-6)
    # Centred on the hottest HCAL tower within 9x9 towers of the jet axis: in the image, the 45x45 pixels around
    # the axis's tower hold no HCAL value above the centre block's, which is one tower (5x5 equal pixels).
    hcal = jets.images[..., 2]
    k, n_phi = 5, 360
    axis_row = 5 * np.floor(jets.jets[:, 0, 1] / 0.087).astype(int) + 2 - (jets.centers[:, 0, 0] - 140) + 62
    tphi = np.floor((jets.jets[:, 0, 2] + np.pi) / (2 * np.pi / 72)).astype(int)
    axis_col = (5 * tphi + 2 - jets.centers[:, 0, 1] + 62) % n_phi
    for i in range(len(jets)):
        window = hcal[i, axis_row[i] - 22:axis_row[i] + 23, axis_col[i] - 22:axis_col[i] + 23]
        assert window.shape == (45, 45) and window.max() <= hcal[i, 62, 62] * (1 + 1e-6)
    np.testing.assert_array_equal(hcal[:, 60:65, 60:65].min(axis=(1, 2)), hcal[:, 62, 62])
    assert (hcal[:, 62, 62] > 0).all() and k == 5
    mark = generated_settings(files[1])
    assert mark["sample"] == "cms_quark_gluon" and mark["detector"]["card"] == "cms" and mark["pileup_mu"] == 0.0
    same = read_cms_quark_gluon(files[1], check=False)
    np.testing.assert_array_equal(same.images, jets.images)
    event = read_cms_quark_gluon(files[0], field="X_event", check=False)
    assert event.images.shape == (12, 280, 360, 3)
    # The jet views are crops of the full-detector image around the stored centres (rows inside 280).
    r, c = jets.centers[:, 0, 0], jets.centers[:, 0, 1]
    inside = (r >= 62) & (r < 280 - 62)
    for i in np.flatnonzero(inside)[:3]:
        crop = np.roll(event.images[i], 62 - c[i], axis=1)[r[i] - 62:r[i] + 63, :125]
        np.testing.assert_allclose(crop, jets.images[i], atol=1e-6)


def test_generation_resumes_with_the_same_bytes(generated, tmp_path):
    from jettf.generate import generate_sample

    out, files = generated
    before = [p.read_bytes() for p in files]
    for p in files:
        p.unlink()
    again = generate_sample("cms_quark_gluon", 6, out, seed=3, shard_jets=3, progress=False)  # from the shards
    assert [p.read_bytes() for p in again] == before
    with pytest.raises(ValueError, match="cms card"):
        generate_sample("cms_quark_gluon", 6, tmp_path, seed=3, detector="atlas", progress=False)
    with pytest.raises(ValueError, match="only for cms_quark_gluon"):
        generate_sample("quark_gluon", 6, tmp_path, seed=3, pileup=20, progress=False)


def test_pileup_overlay_in_shards(monkeypatch):
    """Pile-up from the (here synthetic) minimum-bias library adds tracks to the images, not to the generator level."""
    from jettf.detector import MinBiasLibrary
    from jettf.generate import cms_quark_gluon as cms

    rng = np.random.default_rng(1)
    n, k = 50, 60
    eta = np.sort(rng.uniform(-3, 3, (n, k)), axis=1).ravel()
    lib = MinBiasLibrary(np.full(n * k, 1.0), eta, rng.uniform(-np.pi, np.pi, n * k), np.cosh(eta),
                         np.full(n * k, 211, np.int32), np.arange(n + 1) * k, 8000.0, 1)
    monkeypatch.setattr(MinBiasLibrary, "cached", classmethod(lambda cls, **kw: lib))
    clean = cms.generate_shard("quark", 3, 11)
    piled = cms.generate_shard("quark", 3, 11, pileup=20)
    tracks = lambda s: s.images["X_event"].values[:, 0].sum() / len(s)  # noqa: E731
    assert tracks(piled) > tracks(clean) + 20 * k * 0.3  # 1 GeV tracks: ~0.8 inside 280 rows, efficiency 0.6-0.7
    # Generator-level images leave pile-up out (003: hard scatter and underlying event only).
    from jettf.detector import Particles

    particles = Particles(np.ones(4), np.zeros(4), np.zeros(4), np.ones(4), np.array([22, 211, 211, 13], np.int32),
                          np.zeros(4), np.zeros(4, np.int64), 1, np.array([False, False, True, False]))
    gen = e2e.generator_pixels(particles, CMS)
    assert gen.channel.tolist() == [0, 1] and gen.value.sum() == 2.0


def test_training_preset_and_channel_option():
    """``python -m jettf.train --dataset cms_quark_gluon_images`` takes 003's settings; ``--channels`` is the
    ImagePreparation option of the same name."""
    import inspect

    from jettf.images import ImagePreparation
    from jettf.training.config import resolve

    config = resolve(task="binary", dataset="cms_quark_gluon_images", channels="tracks,ecal")
    assert (config.dataset, config.model, config.signal, config.background) == (
        "cms_quark_gluon_images/jet", "resnet15", "quark", "gluon")
    assert (config.batch_size, config.learning_rate, config.epochs, config.channels) == (32, 5e-4, 30, "tracks,ecal")
    assert config.standardize and config.std_floor == 0.5  # sparse crystal views: rare hits not blown up
    assert resolve(task="binary", dataset="cms_quark_gluon_images", quick=True).dataset == "cms_quark_gluon_images/quick"
    assert "channels" in inspect.signature(ImagePreparation.__init__).parameters
