"""The `electron_images` TFDS builder."""
