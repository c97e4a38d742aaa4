"""The Top Quark Tagging Reference Dataset as 3-channel jet images with global features (002, Baruah et al.)."""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from jettf.data import sources
from jettf.data.builder_base import RELEASE_NOTES, JetImageBuilder, JetImageConfig
from jettf.features import FeatureSpec
from jettf.images import ImageSpec

# 002 section 2.3: the EffNet-S global features (anti-kT R = 0.8 jets).
_FEATURES = FeatureSpec.effnet_s()


def _config(name, description, npix, n_jets=None):
    # 002 section 2.2: (pt, mass, energy) over [-1.2, 1.2]^2 centred on the hardest
    # constituent, crop 35 -> 28 / 40 -> 32 after standardization; jets with fewer
    # than 4 constituents are dropped (N-subjettiness, U_3 and M_3 need them).
    return JetImageConfig(name=name, description=description, image_spec=ImageSpec.effnet_s(npix),
                          feature_spec=_FEATURES, n_jets=n_jets, max_constituents=200, min_constituents=4,
                          shard_size=20_000)


class Builder(JetImageBuilder):
    """Top tagging: the public train/val/test files are the train/validation/test splits."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = RELEASE_NOTES
    BUILDER_CONFIGS = [
        _config("effnet_s_35", "35x35 (pt, mass, energy) images centred on the hardest constituent, crop 28 (002)", 35),
        _config("effnet_s_40", "40x40 (pt, mass, energy) images centred on the hardest constituent, crop 32 (002)", 40),
        _config("quick", "40x40x3 images as effnet_s_40, 300 jets per class (--quick, tests)", 40, 300),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "effnet_s_40"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download train.h5, val.h5 and test.h5 of the Top Quark Tagging Reference
    Dataset (Zenodo record 2603256, https://zenodo.org/records/2603256) into one
    directory; pass it as --manual-dir (python -m jettf.data build) or
    DownloadConfig(manual_dir=...). Without it, an equivalent sample is generated
    with Pythia 8 + FastJet (no Delphes detector simulation).
    """
    HOMEPAGE = "https://zenodo.org/records/2603256"

    SAMPLE = "top_tagging"
    CLASS_NAMES = ("qcd", "top")
    CLASS_DESCRIPTIONS = {
        "qcd": "QCD light-quark and gluon jets (background), is_signal_new = 0",
        "top": "hadronic top-quark jets (signal), is_signal_new = 1",
    }
    SPLIT_BY = "file"
    FILE_SPLITS = {"train": "train", "val": "validation", "test": "test"}
    GENERATED_N_JETS = 50_000

    @classmethod
    def public_files(cls, directory):
        return {group: [Path(directory) / f"{group}.h5"] for group in cls.FILE_SPLITS}

    @staticmethod
    def read_range(path, start, stop):
        return sources.top_tagging_range(path, start, stop)

    @staticmethod
    def count_rows(path):
        from jettf.io import read_top_tagging

        return sources.count_rows(read_top_tagging, path)
