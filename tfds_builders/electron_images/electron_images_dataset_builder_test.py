"""Builder test of `electron_images` on a small electrons.h5 in jettf's layout (the manual-directory path)."""

from tfds_builders import testing
from tfds_builders.electron_images import electron_images_dataset_builder


class TestElectronImages(testing.BuilderTestCase):
    DATASET_CLASS = electron_images_dataset_builder.Builder
    CONFIG = "quick"
    SPLITS = {"train": 24, "validation": 8, "test": 8}
