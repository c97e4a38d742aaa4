"""JetNet g/q/t/W/Z jets as sparse jet images, global features and constituents (000, Bassa et al.)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tensorflow_datasets as tfds

from jettf.data import sources
from jettf.data.builder_base import RELEASE_NOTES, JetImageBuilder, JetImageConfig
from jettf.features import FeatureSpec
from jettf.images import ImageSpec

# 000 section 2: pT_rel images over [-0.4, 0.4]^2 around the jet axis. The renderer
# sums pt in GeV; normalize="l1" divides by the pt inside the window, i.e. pT_rel
# up to the (small) fraction of the jet pt that falls outside it.
_ENSEMBLE = dataclasses.replace(ImageSpec.ensemble(), normalize="l1")
# JetNet jets are anti-kT R = 0.8.
_FEATURES = FeatureSpec(jet_radius=0.8)
# --quick and tests: the cheapest substructure set (one beta, no 4-point correlators).
_QUICK_FEATURES = FeatureSpec(jet_radius=0.8, tau_ratios=(2, 3), tau_betas=(1.0,), c_series=(1, 2), c_betas=(1.0,),
                              d2_params=((1.0, 1.0),), u_series=(1,), u_betas=(1.0,), m_series=(2,), m_betas=(1.0,),
                              n_series=(2,), n_betas=(1.0,))


def _config(name, description, spec, n_jets, features=_FEATURES):
    return JetImageConfig(name=name, description=description, image_spec=spec, feature_spec=features,
                          n_jets=n_jets, max_constituents=30, min_constituents=1)


class Builder(JetImageBuilder):
    """JetNet (30 particles): one file per class, 80/20 stratified train/test split (000)."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = RELEASE_NOTES
    BUILDER_CONFIGS = [
        _config("default", "299x299 pT_rel images over [-0.4, 0.4]^2, 170k jets per class (000)", _ENSEMBLE, 170_000),
        _config("pt_128", "128x128 pT_rel images over [-0.4, 0.4]^2, 170k jets per class",
                dataclasses.replace(_ENSEMBLE, npix=128), 170_000),
        _config("pt_64", "64x64 pT_rel images over [-0.4, 0.4]^2, 170k jets per class",
                dataclasses.replace(_ENSEMBLE, npix=64), 170_000),
        _config("quick", "32x32 pT_rel images, 1000 jets per class, small feature set (--quick, tests)",
                dataclasses.replace(_ENSEMBLE, npix=32), 1000, _QUICK_FEATURES),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "default"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download the 30-particle JetNet files g.hdf5, q.hdf5, t.hdf5, w.hdf5, z.hdf5
    (Zenodo record 6975118, https://zenodo.org/records/6975118) and put them in
    one directory; pass it as --manual-dir (python -m jettf.data build) or
    DownloadConfig(manual_dir=...). Without it, an equivalent sample is generated
    with Pythia 8 + FastJet.
    """
    HOMEPAGE = "https://zenodo.org/records/6975118"

    SAMPLE = "jetnet"
    CLASS_NAMES = ("g", "q", "t", "w", "z")
    CLASS_DESCRIPTIONS = {
        "g": "gluon jets",
        "q": "light-quark (u, d, s) jets",
        "t": "top-quark jets (t -> bW -> bqq')",
        "w": "W-boson jets (W -> qq')",
        "z": "Z-boson jets (Z -> qq)",
    }
    SPLIT_BY = "fraction"
    # 000 section 2: 80/20 stratified train+validation/test; validation folds come from
    # K-fold slicing of train (jettf.data.kfold_splits).
    SPLIT_FRACTIONS = {"train": 0.8, "test": 0.2}
    GENERATED_N_JETS = 170_000

    @classmethod
    def public_files(cls, directory):
        return {c: [Path(directory) / f"{c}.hdf5"] for c in cls.CLASS_NAMES}

    @staticmethod
    def read_range(path, start, stop):
        return sources.jetnet_range(path, start, stop, Builder.CLASS_NAMES)

    @staticmethod
    def count_rows(path):
        from jettf.io import read_jetnet

        return sources.count_rows(read_jetnet, path)
