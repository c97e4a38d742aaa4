"""Builder test of `top_tagging_images` on small public-layout files (the manual-directory path)."""

from tfds_builders import testing
from tfds_builders.top_tagging_images import top_tagging_images_dataset_builder


class TestTopTaggingImages(testing.BuilderTestCase):
    DATASET_CLASS = top_tagging_images_dataset_builder.Builder
    CONFIG = "quick"
    SPLITS = {"train": 20, "validation": 8, "test": 8}
