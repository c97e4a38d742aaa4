"""003's CMS end-to-end quark/gluon jet images (Andrews et al.), stored sparse as the files hold them."""

from __future__ import annotations

import functools
from pathlib import Path

import tensorflow_datasets as tfds

from jettf.data import sources
from jettf.data.builder_base import JetImageBuilder, JetImageConfig
from jettf.features import FeatureSpec
from jettf.images import ImageSpec

# 003 section 3: 125 x 125 pixels of one ECAL crystal (0.0174 in eta; 2 pi / 360 = 0.01745 in phi), i.e. a
# half-width of 125 x 0.0174 / 2 = 1.0875; channels in the files' order.
_PIXEL = 0.0174
_JET = ImageSpec(npix=125, extent=125 * _PIXEL / 2, channels=("tracks", "ecal", "hcal"))
# 003's "Generated EM+Had" reference: pT of electrons and photons / of hadrons at their generator-level positions.
_GEN = ImageSpec(npix=125, extent=125 * _PIXEL / 2, channels=("em", "had"))
# The files hold images, pt and m0: no constituents to compute jet substructure from.
_NO_FEATURES = FeatureSpec(kinematics=False, tau_ratios=(), c_series=(), d2_params=(), u_series=(), m_series=(),
                           n_series=())


def _config(name, description, spec, n_jets=None):
    # Dense 125 x 125 x 3 float32 images are read in chunks of 256 rows (48 MB) and stored sparse.
    return JetImageConfig(name=name, description=description, image_spec=spec, feature_spec=_NO_FEATURES,
                          n_jets=n_jets, max_constituents=0, min_constituents=1, shard_size=1024)


class Builder(JetImageBuilder):
    """003's jet views: one HDF5 (or parquet) file, split 70/10/20 per class in file order."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First release: the files' pre-rendered 125 x 125 tracks/ECAL/HCAL (or EM/Had) jet views stored "
                 "sparse; no constituents, no global features.",
    }
    BUILDER_CONFIGS = [
        _config("jet", "125x125 tracks/ECAL/HCAL jet views (003)", _JET),
        _config("gen", "125x125 generator-level EM/Had views of the same jets (003's reference; generated files)",
                _GEN),
        _config("quick", "125x125 tracks/ECAL/HCAL jet views, 150 events per class (--quick, tests)", _JET, 150),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "jet"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put quark-gluon_data-set_n139306.hdf5 (003's test set of 139,306 jets, released with
    the CMS Open Data end-to-end studies, e.g. by ML4SCI) or the parquet files with the same
    columns (X_jets, y, pt, m0) in one directory; pass it as --manual-dir (python -m
    jettf.data build) or DownloadConfig(manual_dir=...). Without them, an equivalent sample is
    generated with Pythia 8 and jettf's CMS detector card (python -m jettf.generate
    cms_quark_gluon; add --pileup 20 there for 003's pile-up and pass its folder as --manual-dir).
    """
    HOMEPAGE = "https://arxiv.org/abs/1902.08276"

    SAMPLE = "cms_quark_gluon"
    CLASS_NAMES = ("gluon", "quark")
    CLASS_DESCRIPTIONS = {
        "gluon": "leading jet of a di-gluon event (both outgoing partons gluons), y = 0",
        "quark": "leading jet of a di-quark event (both outgoing partons u, d or s quarks), y = 1",
    }
    HAS_PID = False
    SPLIT_BY = "fraction"
    SPLIT_FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}
    GENERATED_N_JETS = 2500

    @classmethod
    def public_files(cls, directory):
        from jettf.io.cms_quark_gluon import PUBLIC_NAME, cms_quark_gluon_files

        directory = Path(directory)
        try:
            return {"all": cms_quark_gluon_files(directory)}
        except FileNotFoundError:
            return {"all": [directory / PUBLIC_NAME]}

    @staticmethod
    def read_range(path, start, stop):
        return sources.cms_quark_gluon_range(path, start, stop)

    @staticmethod
    def count_rows(path):
        from jettf.io import read_cms_quark_gluon

        return sources.count_rows(functools.partial(read_cms_quark_gluon, check=False), path)
