"""Builder test of `jetnet_images` on small public-layout files (the manual-directory path)."""

from tfds_builders import testing
from tfds_builders.jetnet_images import jetnet_images_dataset_builder


class TestJetnetImages(testing.BuilderTestCase):
    DATASET_CLASS = jetnet_images_dataset_builder.Builder
    CONFIG = "quick"
    SPLITS = {"train": 40, "test": 10}
