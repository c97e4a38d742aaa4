"""Builder test of `quark_gluon_images` on small public-layout files (the manual-directory path)."""

from tfds_builders import testing
from tfds_builders.quark_gluon_images import quark_gluon_images_dataset_builder


class TestQuarkGluonImages(testing.BuilderTestCase):
    DATASET_CLASS = quark_gluon_images_dataset_builder.Builder
    CONFIG = "quick"
    SPLITS = {"train": 32, "validation": 4, "test": 4}
