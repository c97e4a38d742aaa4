"""The `jetnet_images` TFDS builder."""
