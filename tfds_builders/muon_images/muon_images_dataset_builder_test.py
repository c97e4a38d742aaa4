"""Builder test of `muon_images` on a small muons.h5 in jettf's layout (the manual-directory path)."""

from tfds_builders import testing
from tfds_builders.muon_images import muon_images_dataset_builder


class TestMuonImages(testing.BuilderTestCase):
    DATASET_CLASS = muon_images_dataset_builder.Builder
    CONFIG = "quick"
    SPLITS = {"train": 24, "validation": 8, "test": 8}
