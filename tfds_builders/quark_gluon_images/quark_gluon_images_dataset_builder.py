"""EnergyFlow's Pythia Z + jet quark/gluon jets as jet images with global features and constituents."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tensorflow_datasets as tfds

from jettf.data import sources
from jettf.data.builder_base import RELEASE_NOTES, JetImageBuilder, JetImageConfig
from jettf.features import FeatureSpec
from jettf.images import ImageSpec

# Anti-kT R = 0.4 jets: N-subjettiness with R0 = 0.4.
_FEATURES = FeatureSpec(jet_radius=0.4)
_QUICK_FEATURES = FeatureSpec(jet_radius=0.4, tau_ratios=(2, 3), tau_betas=(1.0,), c_series=(1, 2), c_betas=(1.0,),
                              d2_params=((1.0, 1.0),), u_series=(1,), u_betas=(1.0,), m_series=(2,), m_betas=(1.0,),
                              n_series=(2,), n_betas=(1.0,))
# Komiske, Metodiev, Schwartz (JHEP 01 (2017) 110): 33x33 over [-0.4, 0.4]^2 around the
# pt centroid; the single-channel version is energyflow's pixelate(..., norm=True).
_COLOR = ImageSpec.quark_gluon()
_PT = dataclasses.replace(_COLOR, channels=("pt",), normalize="l1")


def _config(name, description, spec, n_jets=None, features=_FEATURES):
    # QG_jets*.npz hold up to ~150 constituents per jet; one shard per 100k-jet file
    # (the .npz reader streams each archive from its first row).
    return JetImageConfig(name=name, description=description, image_spec=spec, feature_spec=features,
                          n_jets=n_jets, max_constituents=150, min_constituents=1, shard_size=100_000)


class Builder(JetImageBuilder):
    """Quark/gluon: 2M jets in 20 files, split 1.6M/200k/200k per class in file order."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = RELEASE_NOTES
    BUILDER_CONFIGS = [
        _config("pt_33", "33x33 pt images (L1-normalized) around the pt centroid", _PT),
        _config("cnm_33", "33x33 images of charged pt, neutral pt and charged multiplicity", _COLOR),
        _config("quick", "33x33 pt images, 300 jets per class, small feature set (--quick, tests)", _PT, 300,
                _QUICK_FEATURES),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "pt_33"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download QG_jets.npz, QG_jets_1.npz, ..., QG_jets_19.npz (EnergyFlow's
    quark/gluon dataset with full particle ids, Zenodo record 3164691,
    https://zenodo.org/records/3164691) into one directory; pass it as
    --manual-dir (python -m jettf.data build) or DownloadConfig(manual_dir=...).
    Any subset of the files is used if QG_jets.npz is among them. Without them,
    an equivalent sample is generated with Pythia 8 + FastJet.
    """
    HOMEPAGE = "https://zenodo.org/records/3164691"

    SAMPLE = "quark_gluon"
    CLASS_NAMES = ("gluon", "quark")
    CLASS_DESCRIPTIONS = {
        "gluon": "gluon jets from Z(-> nu nu) + g, y = 0",
        "quark": "light-quark jets from Z(-> nu nu) + (u, d, s), y = 1",
    }
    HAS_PID = True
    SPLIT_BY = "fraction"
    # 1.6M / 200k / 200k of the 2M public jets, per class.
    SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
    GENERATED_N_JETS = 50_000

    @classmethod
    def public_files(cls, directory):
        directory = Path(directory)
        extra = sorted(directory.glob("QG_jets_*.npz"), key=lambda p: int(p.stem.rsplit("_", 1)[1])
                       if p.stem.rsplit("_", 1)[1].isdigit() else 10**9)
        return {"all": [directory / "QG_jets.npz", *extra]}

    @staticmethod
    def read_range(path, start, stop):
        return sources.quark_gluon_range(path, start, stop)

    @staticmethod
    def count_rows(path):
        from jettf.io import read_quark_gluon

        return sources.count_rows(read_quark_gluon, path)
