"""Builder test of `cms_quark_gluon_images` on small public-layout files (the manual-directory path)."""

from tfds_builders import testing
from tfds_builders.cms_quark_gluon_images import cms_quark_gluon_images_dataset_builder


class TestCmsQuarkGluonImages(testing.BuilderTestCase):
    DATASET_CLASS = cms_quark_gluon_images_dataset_builder.Builder
    CONFIG = "quick"
    SPLITS = {"train": 28, "validation": 4, "test": 8}
