"""Dummy public files for builder tests: small, synthetic, written with the ``jettf.io`` writers.

The jets are random (constituents scattered around a jet axis, wider for
higher labels) and cost nothing to make; they exercise the builders' public
file path exactly as the real files do (same writers, same readers). Physics
tests use Pythia jets instead (``tests/conftest.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

import numpy as np

from jettf.calo.images import pixel_cells
from jettf.jets import JetBatch

__all__ = ["synthetic_jets", "synthetic_e2e_images", "synthetic_lepton_candidates", "write_dummy_files", "DUMMY_SIZES"]


def synthetic_jets(n: int, class_names: Sequence[str], seed: int = 0, max_constituents: int = 40,
                   jet_pt: float = 600.0, with_pid: bool = False, min_constituents: int = 5,
                   width: float = 0.08) -> JetBatch:
    """``n`` random jets; labels cycle through ``class_names``; ``min_constituents`` to
    ``max_constituents`` constituents each, spread ``width`` (times 1 + label / 2) around the axis."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(class_names)
    m = max_constituents
    n_cons = rng.integers(min_constituents, m + 1, size=n)
    mask = np.arange(m)[None] < n_cons[:, None]
    axis_eta = rng.uniform(-1.5, 1.5, n)[:, None]
    axis_phi = rng.uniform(-np.pi, np.pi, n)[:, None]
    width = width * (1.0 + 0.5 * labels)[:, None]
    eta = axis_eta + rng.normal(0.0, 1.0, (n, m)) * width
    phi = axis_phi + rng.normal(0.0, 1.0, (n, m)) * width
    weight = rng.exponential(1.0, (n, m)) * mask
    pt = jet_pt * weight / weight.sum(axis=1, keepdims=True)
    extra = {}
    if with_pid:
        extra["pid"] = np.where(rng.random((n, m)) < 0.6, 211, 22) * mask
    return JetBatch.from_ptetaphie(pt, eta, phi, pt * np.cosh(eta), mask=mask, labels=labels,
                                   class_names=tuple(class_names), **extra)


def synthetic_e2e_images(n: int, seed: int = 0, n_tracks=(16, 9)):
    """``n`` 125 x 125 images as 003 describes its E2E jet views, and labels ``y`` (alternating 0, 1): isolated
    track pixels (channel 0; ``n_tracks[y]`` of them within 40 pixels of the centre, so gluons, y = 0, have more),
    ECAL showers of 3 x 3 pixels (1), HCAL towers as 5 x 5 blocks of one value (2). Returns (images, y)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = np.zeros((n, 125, 125, 3), np.float32)
    k = max(n_tracks)
    cell = np.argsort(rng.random((n, 400)), axis=1)[:, :k]  # distinct cells of a 2-pixel lattice: never adjacent
    use = np.arange(k)[None, :] < np.asarray(n_tracks)[y][:, None]
    jet = np.repeat(np.arange(n), k)[use.ravel()]
    x[jet, (42 + 2 * (cell // 20)).ravel()[use.ravel()], (42 + 2 * (cell % 20)).ravel()[use.ravel()], 0] = \
        rng.exponential(5.0, int(use.sum())) + 0.5
    kernel = np.array([[1, 2, 1], [2, 8, 2], [1, 2, 1]], np.float32) / 20
    corner = rng.integers(10, 112, (n, 4, 2))
    energy = rng.exponential(3.0, (n, 4))
    d = np.arange(3)
    np.add.at(x, (np.arange(n)[:, None, None, None], corner[..., 0, None, None] + d[:, None],
                  corner[..., 1, None, None] + d[None, :], 1), energy[..., None, None] * kernel)
    tower = rng.integers(0, 25, (n, 3, 2))
    d = np.arange(5)
    x[np.arange(n)[:, None, None, None], 5 * tower[..., 0, None, None] + d[:, None], 5 * tower[..., 1, None, None] +
      d[None, :], 2] = (rng.exponential(10.0, (n, 3)) / 25 + 0.01)[..., None, None]
    return x, y


def synthetic_lepton_candidates(kind: str, n: int, seed: int = 0) -> dict:
    """``n`` candidates (labels alternating 0, 1) in the layout of ``electrons.h5`` / ``muons.h5``
    (:mod:`jettf.io.leptons`). Electrons (y = 1) leave a narrow ECAL shower (3 x 3 cells) and ~nothing in the
    HCAL; jets (y = 0) a wider one (7 x 7) and a few GeV in the HCAL. Prompt muons (y = 1) see only soft
    pile-up-like noise (~0.04 GeV in 60% of the pixels, zero-suppressed below 5 MeV); non-prompt ones also a few GeV
    of hadrons within delta-R ~ 0.15. Weights vary (0.5-1.5)."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int8)
    pt = rng.uniform(10.0, 30.0 if kind == "electrons" else 15.0, n).astype(np.float32)
    eta = rng.uniform(-2.0, 2.0, n).astype(np.float32)
    out = {"y": y, "pt": pt, "eta": eta, "weight": rng.uniform(0.5, 1.5, n).astype(np.float32)}
    if kind == "electrons":
        d = np.arange(31) - 15
        width = np.where(y == 1, 0.8, 2.5)[:, None, None]
        shower = np.exp(-(d[None, :, None] ** 2 + d[None, None, :] ** 2) / (2 * width**2))
        ecal = pt[:, None, None] * shower / shower.sum(axis=(1, 2), keepdims=True)
        ecal = (ecal * rng.uniform(0.8, 1.2, ecal.shape) * (ecal > 0.02)).astype(np.float32)
        hcal = np.zeros((n, 8, 8), np.float32)
        hcal[:, 3:5, 3:5] = (np.where(y == 1, 0.05, 2.0)[:, None, None] * rng.exponential(1.0, (n, 2, 2)))
        cosh = np.cosh(eta)[:, None, None].astype(np.float32)
        out.update(ecal_et=ecal, ecal_e=ecal * cosh, hcal_et=hcal, hcal_e=hcal * cosh,
                   hcal_offset=rng.uniform(-0.05, 0.05, (n, 2)).astype(np.float32))
    else:
        centres = -0.45 + (np.arange(32) + 0.5) * 0.9 / 32
        dr = np.hypot(centres[:, None], centres[None, :])
        noise = rng.exponential(0.04, (n, 32, 32)) * (rng.random((n, 32, 32)) < 0.6)  # pile-up-like
        core = np.where(y == 0, 8.0, 0.1)[:, None, None] * np.exp(-dr**2 / (2 * 0.08**2))[None] / 20
        image = noise + core * rng.uniform(0.5, 1.5, (n, 1, 1))
        out["image_et"] = (image * (dr < 0.45) * (image > 0.005)).astype(np.float32)  # zero suppression
        # Cells: the 64 hardest pixels, as if each were an ECAL cell (the last column, 0: ECAL).
        pixels = pixel_cells(out["image_et"], eta, extent=(0.45, 0.45), max_cells=64)
        out["cells"] = np.concatenate([pixels, np.zeros(pixels.shape[:2] + (1,), np.float32)], axis=-1)
    return out


#: Jets per class in the dummy files of each builder.
DUMMY_SIZES = {"jetnet_images": 10, "top_tagging_images": {"train": 10, "val": 4, "test": 4},
               "quark_gluon_images": 20, "cms_quark_gluon_images": 20, "electron_images": 20, "muon_images": 20}


def write_dummy_files(builder_name: str, directory, seed: int = 0) -> Dict[str, list]:
    """Write small public-layout files for ``builder_name`` into ``directory``; returns {group: paths}."""
    from jettf import io

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if builder_name == "jetnet_images":
        n = DUMMY_SIZES[builder_name]
        jets = synthetic_jets(5 * n, io.JETNET_CLASSES, seed=seed, max_constituents=30, jet_pt=1000.0)
        return {"all": io.write_jetnet(jets, directory)}
    if builder_name == "top_tagging_images":
        out = {}
        for i, (group, n) in enumerate(DUMMY_SIZES[builder_name].items()):
            jets = synthetic_jets(2 * n, io.TOP_TAGGING_CLASSES, seed=seed + i, max_constituents=60)
            out[group] = [io.write_top_tagging(jets, directory / f"{group}.h5")]
        return out
    if builder_name == "quark_gluon_images":
        n = DUMMY_SIZES[builder_name]
        paths = []
        for i, name in enumerate(("QG_jets.npz", "QG_jets_1.npz")):
            jets = synthetic_jets(n, io.QUARK_GLUON_CLASSES, seed=seed + i, max_constituents=50, jet_pt=520.0,
                                  with_pid=True)
            paths.append(io.write_quark_gluon(jets, directory / name))
        return {"all": paths}
    if builder_name == "cms_quark_gluon_images":  # 003's public E2E layout: X_jets, y, pt, m0 (no extra sets)
        import h5py

        n = 2 * DUMMY_SIZES[builder_name]
        images, y = synthetic_e2e_images(n, seed=seed)
        path = directory / f"quark-gluon_data-set_n{n}.hdf5"
        with h5py.File(path, "w") as f:
            f["X_jets"], f["y"] = images, y.astype(np.float32)
            f["pt"], f["m0"] = np.linspace(75.0, 200.0, n, dtype=np.float32), np.full(n, 12.0, np.float32)
        return {"all": [path]}
    if builder_name in ("electron_images", "muon_images"):  # 004's candidate files (jettf.io.leptons)
        from jettf.io import leptons

        kind = builder_name.split("_")[0] + "s"
        arrays = synthetic_lepton_candidates(kind, 2 * DUMMY_SIZES[builder_name], seed=seed)
        write = leptons.write_electrons if kind == "electrons" else leptons.write_muons
        return {"all": [write(arrays, directory / (leptons.ELECTRONS_FILE if kind == "electrons" else
                                                    leptons.MUONS_FILE))]}
    raise ValueError(f"unknown builder {builder_name!r}")


class BuilderTestCase:
    """TFDS-style checks of one builder config on dummy public files (pytest class; no extra dependencies).

    The same checks as ``tfds.testing.DatasetBuilderTestCase`` (which needs ``dill``):
    the builder is registered, prepares from the manual directory, every split has
    the expected number of examples whose tensors match the features, no example
    is in two splits, and a fresh builder reloads the info and metadata.

    Subclasses set ``DATASET_CLASS``, ``CONFIG`` and ``SPLITS``.
    """

    DATASET_CLASS = None
    CONFIG = "quick"
    SPLITS: Dict[str, int] = {}

    def test_builder(self, tmp_path):
        import hashlib

        import tensorflow_datasets as tfds

        import tfds_builders  # noqa: F401  (registration)

        cls = self.DATASET_CLASS
        assert tfds.builder_cls(cls.name) is cls
        manual = tmp_path / "manual"
        write_dummy_files(cls.name, manual)
        builder = cls(config=self.CONFIG, data_dir=str(tmp_path / "data"))
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=str(manual), try_download_gcs=False))
        assert builder.info.description and "@" in builder.info.citation  # README.md and CITATIONS.bib
        assert builder.info.metadata["source"]["kind"] == "public"
        digests = {}
        for split, expected in self.SPLITS.items():
            ds = builder.as_dataset(split=split)
            for key, info in builder.info.features.get_tensor_info().items():
                spec = ds.element_spec[key]
                assert spec.dtype == info.dtype and spec.shape.is_compatible_with(info.shape), key
            examples = list(tfds.as_numpy(ds))
            assert len(examples) == expected, split
            digests[split] = {hashlib.sha256(repr(sorted((k, v.tobytes() if hasattr(v, "tobytes") else v)
                                                         for k, v in ex.items())).encode()).hexdigest()
                              for ex in examples}
            assert len(digests[split]) == expected, f"duplicate examples in {split}"
        splits = list(digests)
        for i, a in enumerate(splits):
            for b in splits[i + 1:]:
                assert not digests[a] & digests[b], f"splits {a} and {b} overlap"
        reloaded = cls(config=self.CONFIG, data_dir=str(tmp_path / "data"))
        assert {s: reloaded.info.splits[s].num_examples for s in self.SPLITS} == self.SPLITS
        assert reloaded.info.metadata["image_spec"] == builder.info.metadata["image_spec"]
        assert set(self.SPLITS) == set(reloaded.info.splits)
